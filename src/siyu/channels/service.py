"""Channel verbs: channels with their aliases, stores, and channel costs per period (for ROI and CAC).

The importer resolves a file's channel and store spellings through `channel_aliases` and `store_codes`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.models import Channel, ChannelCost, SourceType, Store
from siyu.channels.schemas import ChannelCostTotal
from siyu.core import audit
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
ALIAS_SEPARATOR = "|"


def _clean_aliases(aliases: Iterable[str]) -> str:
    seen: dict[str, None] = {}
    for alias in aliases:
        alias = alias.strip()
        if not alias:
            continue
        if ALIAS_SEPARATOR in alias:
            raise ValidationFailed(f"alias {alias!r} contains {ALIAS_SEPARATOR!r}", where="aliases")
        seen.setdefault(alias, None)
    joined = ALIAS_SEPARATOR.join(seen)
    if len(joined) > 500:
        raise ValidationFailed("aliases are longer than 500 characters in all", where="aliases")
    return joined


def _source_type(value: str) -> str:
    try:
        return SourceType(value).value
    except ValueError:
        raise ValidationFailed(
            f"unknown source type {value!r}",
            where="source_type",
            hint="one of " + ", ".join(t.value for t in SourceType),
        ) from None


def _check_alias_clash(
    session: Session, *, workspace_id: int, channel_id: int | None, spellings: set[str]
) -> None:
    """Two channels may not claim the same spelling: the importer could not tell them apart."""
    taken = channel_aliases(session, workspace_id=workspace_id, include_archived=True)
    own_key = None
    if channel_id is not None:
        own_key = session.scalar(select(Channel.key).where(Channel.id == channel_id))
    for spelling in spellings:
        holder = taken.get(spelling.lower())
        if holder is not None and holder != own_key:
            raise Conflict(
                f"{spelling!r} already names channel {holder!r}",
                where="aliases",
                hint="remove it from that channel first, or pick another spelling",
            )


def create_channel(
    session: Session,
    *,
    workspace_id: int,
    key: str,
    name: str,
    source_type: str,
    aliases: Iterable[str] = (),
    actor_user_id: int | None = None,
) -> Channel:
    """Create a channel; its key, name and aliases must not name another channel of the workspace."""
    key = key.strip().lower()
    if not _KEY.match(key):
        raise ValidationFailed(
            f"channel key {key!r} is not valid",
            where="key",
            hint="use up to 64 lowercase letters, digits, '-', '_' or '.'",
        )
    if not name.strip():
        raise ValidationFailed("a channel needs a name", where="name")
    alias_text = _clean_aliases(aliases)
    _check_alias_clash(
        session,
        workspace_id=workspace_id,
        channel_id=None,
        spellings={key, name.strip(), *[a for a in alias_text.split(ALIAS_SEPARATOR) if a]},
    )
    channel = Channel(
        workspace_id=workspace_id,
        key=key,
        name=name.strip(),
        source_type=_source_type(source_type),
        aliases=alias_text,
        created_at=utcnow(),
    )
    session.add(channel)
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="channel.created",
        target_type="channel",
        target_id=channel.id,
        detail={"key": key},
    )
    return channel


def get_channel(session: Session, *, workspace_id: int, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None or channel.workspace_id != workspace_id:
        raise NotFound(f"channel {channel_id} does not exist in this workspace", where="channel_id")
    return channel


def update_channel(
    session: Session,
    *,
    workspace_id: int,
    channel_id: int,
    name: str | None = None,
    source_type: str | None = None,
    aliases: Iterable[str] | None = None,
    actor_user_id: int | None = None,
) -> Channel:
    """Rename a channel, change its source type or replace its aliases (the key never changes)."""
    channel = get_channel(session, workspace_id=workspace_id, channel_id=channel_id)
    spellings: set[str] = set()
    if name is not None:
        if not name.strip():
            raise ValidationFailed("a channel needs a name", where="name")
        spellings.add(name.strip())
    alias_text = None
    if aliases is not None:
        alias_text = _clean_aliases(aliases)
        spellings.update(a for a in alias_text.split(ALIAS_SEPARATOR) if a)
    _check_alias_clash(session, workspace_id=workspace_id, channel_id=channel_id, spellings=spellings)
    if name is not None:
        channel.name = name.strip()
    if source_type is not None:
        channel.source_type = _source_type(source_type)
    if alias_text is not None:
        channel.aliases = alias_text
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="channel.updated",
        target_type="channel",
        target_id=channel.id,
    )
    return channel


def archive_channel(
    session: Session, *, workspace_id: int, channel_id: int, actor_user_id: int | None = None
) -> Channel:
    """Hide a channel from pickers; its orders and costs stay, and files may still name it."""
    channel = get_channel(session, workspace_id=workspace_id, channel_id=channel_id)
    if channel.archived_at is None:
        channel.archived_at = utcnow()
        audit.record(
            session,
            workspace_id=workspace_id,
            actor_user_id=actor_user_id,
            action="channel.archived",
            target_type="channel",
            target_id=channel.id,
        )
    return channel


def list_channels(session: Session, *, workspace_id: int, include_archived: bool = False) -> list[Channel]:
    query = select(Channel).where(Channel.workspace_id == workspace_id)
    if not include_archived:
        query = query.where(Channel.archived_at.is_(None))
    return list(session.scalars(query.order_by(Channel.key)))


def channel_aliases(session: Session, *, workspace_id: int, include_archived: bool = True) -> dict[str, str]:
    """Every spelling of every channel, lower-cased (key, name, each alias) → channel key."""
    result: dict[str, str] = {}
    for channel in list_channels(session, workspace_id=workspace_id, include_archived=include_archived):
        spellings = [channel.key, channel.name, *channel.aliases.split(ALIAS_SEPARATOR)]
        for spelling in spellings:
            if spelling:
                result.setdefault(spelling.strip().lower(), channel.key)
    return result


def channel_ids(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Channel key → id."""
    rows = session.execute(select(Channel.key, Channel.id).where(Channel.workspace_id == workspace_id))
    return {key: id_ for key, id_ in rows}


def channel_names(session: Session, *, workspace_id: int) -> dict[int, tuple[str, str]]:
    """Channel id → (key, name), for reports that group by channel id."""
    rows = session.execute(
        select(Channel.id, Channel.key, Channel.name).where(Channel.workspace_id == workspace_id)
    )
    return {id_: (key, name) for id_, key, name in rows}


# --- stores -----------------------------------------------------------------------------------------


def create_store(
    session: Session,
    *,
    workspace_id: int,
    code: str,
    name: str,
    city: str = "",
    address: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    actor_user_id: int | None = None,
) -> Store:
    code = code.strip()
    if not code:
        raise ValidationFailed("a store needs a code", where="code", hint="the code used in order files")
    if session.scalar(select(Store.id).where(Store.workspace_id == workspace_id, Store.code == code)):
        raise Conflict(f"store {code!r} exists already", where="code")
    if latitude is not None and not -90 <= latitude <= 90:
        raise ValidationFailed(f"latitude {latitude} is outside -90..90", where="latitude")
    if longitude is not None and not -180 <= longitude <= 180:
        raise ValidationFailed(f"longitude {longitude} is outside -180..180", where="longitude")
    store = Store(
        workspace_id=workspace_id,
        code=code,
        name=name.strip() or code,
        city=city.strip(),
        address=address.strip(),
        latitude=latitude,
        longitude=longitude,
        created_at=utcnow(),
    )
    session.add(store)
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="store.created",
        target_type="store",
        target_id=store.id,
    )
    return store


def list_stores(session: Session, *, workspace_id: int) -> list[Store]:
    return list(session.scalars(select(Store).where(Store.workspace_id == workspace_id).order_by(Store.code)))


def get_store(session: Session, *, workspace_id: int, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None or store.workspace_id != workspace_id:
        raise NotFound(f"store {store_id} does not exist in this workspace", where="store_id")
    return store


def store_codes(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Store code, as written and lower-cased → store id (for the importer)."""
    result: dict[str, int] = {}
    for code, id_ in session.execute(select(Store.code, Store.id).where(Store.workspace_id == workspace_id)):
        result[code] = id_
        result.setdefault(code.lower(), id_)
    return result


# --- costs ------------------------------------------------------------------------------------------


def add_cost(
    session: Session,
    *,
    workspace_id: int,
    channel_id: int,
    period_start: date,
    period_end: date,
    amount_cents: int,
    currency: str = "CNY",
    note: str = "",
    actor_user_id: int | None = None,
) -> ChannelCost:
    """Record money spent on a channel over [period_start, period_end] (inclusive).

    Refused: a negative amount, an end before the start, and a period overlapping another cost of the
    same channel booked by hand (it would count that money twice in ROI). Costs another domain books
    for one of its sources (`book_source_cost`) are separate items and never clash.
    """
    get_channel(session, workspace_id=workspace_id, channel_id=channel_id)
    if amount_cents < 0:
        raise ValidationFailed(
            f"cost amount {amount_cents} is negative",
            where="amount_cents",
            hint="record money spent in cents, 0 or more; correct a cost by deleting and re-adding it",
        )
    if period_end < period_start:
        raise ValidationFailed(
            f"period ends ({period_end}) before it starts ({period_start})",
            where="period_end",
            hint="both dates are inclusive; a one-day period has start = end",
        )
    overlapping = session.scalar(
        select(ChannelCost).where(
            ChannelCost.workspace_id == workspace_id,
            ChannelCost.channel_id == channel_id,
            ChannelCost.source_key.is_(None),
            ChannelCost.period_start <= period_end,
            ChannelCost.period_end >= period_start,
        )
    )
    if overlapping is not None:
        raise Conflict(
            f"{period_start}..{period_end} overlaps the cost recorded for "
            f"{overlapping.period_start}..{overlapping.period_end}",
            where="period_start",
            hint="record costs per non-overlapping period, or delete the other cost first",
        )
    cost = ChannelCost(
        workspace_id=workspace_id,
        channel_id=channel_id,
        period_start=period_start,
        period_end=period_end,
        amount_cents=amount_cents,
        currency=currency.upper(),
        note=note,
        created_at=utcnow(),
    )
    session.add(cost)
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="channel_cost.added",
        target_type="channel_cost",
        target_id=cost.id,
        detail={"channel_id": channel_id, "amount_cents": amount_cents},
    )
    return cost


def book_source_cost(
    session: Session,
    *,
    workspace_id: int,
    source_key: str,
    channel_id: int,
    day: date,
    amount_cents: int,
    note: str = "",
    actor_user_id: int | None = None,
) -> ChannelCost | None:
    """Keep the one cost record of a source (`live_code:12`) at `amount_cents` on `channel_id`, dated
    `day`: created, changed (amount or channel; the first day is kept) or, at 0, removed. Safe to
    call again with the same values. None when no cost is left."""
    get_channel(session, workspace_id=workspace_id, channel_id=channel_id)
    if amount_cents < 0:
        raise ValidationFailed(f"cost amount {amount_cents} is negative", where="amount_cents", hint="≥ 0")
    cost = session.scalar(
        select(ChannelCost).where(
            ChannelCost.workspace_id == workspace_id, ChannelCost.source_key == source_key
        )
    )
    if amount_cents == 0:
        if cost is not None:
            delete_cost(session, workspace_id=workspace_id, cost_id=cost.id, actor_user_id=actor_user_id)
        return None
    if cost is not None and (cost.amount_cents, cost.channel_id, cost.note) == (
        amount_cents,
        channel_id,
        note,
    ):
        return cost
    if cost is None:
        cost = ChannelCost(
            workspace_id=workspace_id,
            source_key=source_key,
            period_start=day,
            period_end=day,
            currency="CNY",
            created_at=utcnow(),
        )
        session.add(cost)
    cost.channel_id, cost.amount_cents, cost.note = channel_id, amount_cents, note
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="channel_cost.booked",
        target_type="channel_cost",
        target_id=cost.id,
        detail={"channel_id": channel_id, "amount_cents": amount_cents, "source": source_key},
    )
    return cost


def delete_cost(
    session: Session, *, workspace_id: int, cost_id: int, actor_user_id: int | None = None
) -> None:
    cost = session.get(ChannelCost, cost_id)
    if cost is None or cost.workspace_id != workspace_id:
        raise NotFound(f"cost {cost_id} does not exist in this workspace", where="cost_id")
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="channel_cost.deleted",
        target_type="channel_cost",
        target_id=cost.id,
        detail={"channel_id": cost.channel_id, "amount_cents": cost.amount_cents},
    )
    session.delete(cost)


def list_costs(session: Session, *, workspace_id: int, channel_id: int | None = None) -> list[ChannelCost]:
    query = select(ChannelCost).where(ChannelCost.workspace_id == workspace_id)
    if channel_id is not None:
        query = query.where(ChannelCost.channel_id == channel_id)
    return list(session.scalars(query.order_by(ChannelCost.channel_id, ChannelCost.period_start)))


def cost_by_channel(session: Session, *, workspace_id: int, start: date, end: date) -> list[ChannelCostTotal]:
    """Cost per channel within [start, end] (inclusive); a period straddling an edge counts pro rata by day.

    Pro rata amounts are rounded down to the cent, so a split of one period never adds up to more
    than was spent.
    """
    if end < start:
        raise ValidationFailed(f"range ends ({end}) before it starts ({start})", where="end")
    names = channel_names(session, workspace_id=workspace_id)
    totals: dict[int, int] = {}
    costs = session.scalars(
        select(ChannelCost).where(
            ChannelCost.workspace_id == workspace_id,
            ChannelCost.period_start <= end,
            ChannelCost.period_end >= start,
        )
    )
    for cost in costs:
        days = (cost.period_end - cost.period_start).days + 1
        inside = (min(cost.period_end, end) - max(cost.period_start, start)).days + 1
        share = cost.amount_cents if inside == days else cost.amount_cents * inside // days
        totals[cost.channel_id] = totals.get(cost.channel_id, 0) + share
    return [
        ChannelCostTotal(
            channel_id=channel_id,
            channel_key=names[channel_id][0],
            channel_name=names[channel_id][1],
            cost_cents=cents,
        )
        for channel_id, cents in sorted(totals.items(), key=lambda item: names[item[0]][0])
    ]
