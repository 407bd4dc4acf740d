"""Customers as WeCom friends: who follows whom (the reachability a WeCom send needs), welcome messages
within their 20-second window, and corp tags (get_corp_tag_list → siyu tags, mark_tag)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, insert, select, tuple_
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Role
from siyu.core import audit
from siyu.core.domain_events import DomainEventType, record_many
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.tags import service as tags
from siyu.wecom.client import WecomClient
from siyu.wecom.models import WecomCorpTag, WecomFollow
from siyu.wecom.service.settings import client_for, ensure_staff

WELCOME_WINDOW = timedelta(seconds=20)  # WeCom: send_welcome_msg within 20 s of the event, once
MAX_ATTACHMENTS = 9
ATTACHMENT_KINDS = ("image", "link", "miniprogram", "video", "file")
_CHUNK = 1000


# --- friends ---------------------------------------------------------------------------------------


def is_friend(session: Session, *, workspace_id: int, customer_ids: Iterable[int]) -> set[int]:
    """The customers among `customer_ids` that at least one staff member has as a WeCom friend now.

    After a merge, the survivor counts once `relink_follows` has run (each `siyu wecom poll` round).
    """
    ids = list(dict.fromkeys(customer_ids))
    found: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        found.update(
            session.scalars(
                select(WecomFollow.customer_id).where(
                    WecomFollow.workspace_id == workspace_id,
                    WecomFollow.customer_id.in_(ids[start : start + _CHUNK]),
                    WecomFollow.removed_at.is_(None),
                )
            )
        )
    return found


def friend_spans(*, workspace_id: int) -> Select[Any]:
    """Every WeCom friendship of a known customer as a span (`customer_id`, `from_at` the add,
    `until_at` the deletion by either side or NULL while it lasts), for the analytical domains to
    compose in SQL (reachability over time)."""
    return select(
        WecomFollow.customer_id.label("customer_id"),
        WecomFollow.added_at.label("from_at"),
        WecomFollow.removed_at.label("until_at"),
    ).where(WecomFollow.workspace_id == workspace_id, WecomFollow.customer_id.is_not(None))


def senders(session: Session, *, workspace_id: int, external_userids: Iterable[str]) -> dict[str, str]:
    """Who can send to each external contact: the staff member (WeCom userid) who has them as a friend
    now, the earliest added when several do. Contacts nobody has as a friend are left out."""
    ids = list(dict.fromkeys(external_userids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        for external, userid in session.execute(
            select(WecomFollow.external_userid, WecomFollow.wecom_userid)
            .where(
                WecomFollow.workspace_id == workspace_id,
                WecomFollow.external_userid.in_(ids[start : start + _CHUNK]),
                WecomFollow.removed_at.is_(None),
            )
            .order_by(WecomFollow.added_at, WecomFollow.id)
        ):
            found.setdefault(external, userid)
    return found


def deleted_staff_everywhere(*, workspace_id: int) -> Select[Any]:
    """`customer_id` and `at` (their latest deletion) of the customers who deleted the staff member on
    WeCom and are no one's friend any more: unreachable there (a deletion by staff does not count, the
    customer did not leave)."""
    still_friend = select(WecomFollow.customer_id).where(
        WecomFollow.workspace_id == workspace_id,
        WecomFollow.customer_id.is_not(None),
        WecomFollow.removed_at.is_(None),
    )
    return (
        select(WecomFollow.customer_id.label("customer_id"), func.max(WecomFollow.removed_at).label("at"))
        .where(
            WecomFollow.workspace_id == workspace_id,
            WecomFollow.customer_id.is_not(None),
            WecomFollow.removed_by == "customer",
            WecomFollow.customer_id.not_in(still_friend),
        )
        .group_by(WecomFollow.customer_id)
    )


def relink_follows(session: Session, *, workspace_id: int) -> int:
    """Point friend relations whose customer was merged away at the customer that now holds their
    external userid (a merge moves identities, not this package's rows); the number relinked."""
    stale = list(
        session.scalars(
            select(WecomFollow).where(
                WecomFollow.workspace_id == workspace_id,
                WecomFollow.customer_id.is_not(None),
                WecomFollow.customer_id.not_in(customers.live_customer_ids(workspace_id)),
            )
        )
    )
    if not stale:
        return 0
    # the integration reads as the workspace itself: no member is acting, and no customer is hidden
    system = Actor(user_id=0, workspace_id=workspace_id, role=Role.OWNER, display_name="WeCom", via="system")
    holders, _missing = customers.customer_ids_by_identity(
        session, actor=system, kind="wecom_external_userid", values=[f.external_userid for f in stale]
    )
    relinked = 0
    for follow in stale:
        holder = holders.get(follow.external_userid)
        if holder is not None and holder != follow.customer_id:
            follow.customer_id = holder
            relinked += 1
    session.flush()
    return relinked


@dataclass(frozen=True)
class FriendshipRecord:
    """One friendship of a history given in bulk: added at `added_at`, and when it ended, by whom."""

    wecom_userid: str
    external_userid: str
    added_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None  # staff | customer, with removed_at
    state: str | None = None  # the contact way's state, when the add came through one


REMOVED_BY = ("staff", "customer")


def _check_friendship(index: int, record: FriendshipRecord) -> None:
    where = f"friendships[{index}]"
    for name in ("wecom_userid", "external_userid"):
        value = getattr(record, name)
        if not value or len(value) > 64:
            raise ValidationFailed(f"a WeCom {name} has 1 to 64 characters", where=f"{where}.{name}")
    if record.added_at.tzinfo is None or (record.removed_at is not None and record.removed_at.tzinfo is None):
        raise ValidationFailed("give the times with a time zone", where=f"{where}.added_at")
    if record.removed_at is None:
        if record.removed_by is not None:
            raise ValidationFailed("removed_by without removed_at", where=f"{where}.removed_by")
        return
    if record.removed_at < record.added_at:
        raise ValidationFailed(
            f"removed at {record.removed_at} before being added at {record.added_at}",
            where=f"{where}.removed_at",
        )
    if record.removed_by not in REMOVED_BY:
        raise ValidationFailed(
            f"removed_by is {record.removed_by!r}", where=f"{where}.removed_by", hint="staff or customer"
        )


def record_friendships(
    session: Session,
    *,
    workspace_id: int,
    friendships: Iterable[FriendshipRecord],
    actor_user_id: int | None = None,
) -> int:
    """Record a history of WeCom friendships at once (an export of 客户联系, a migration, the demo brand);
    the number recorded.

    Set-based: customers are resolved by `wecom_external_userid`, follows are inserted in bulk, and the
    domain events the callbacks emit (`wecom.friend_added`, then `wecom.friend_deleted` or
    `wecom.staff_deleted` for an ended friendship) are recorded at the friendship's own times, with one
    audit row. A (staff, contact) pair already known is left as it is, so recording the same history
    twice changes nothing. Unlike a callback, no customer event is written and no live code is credited:
    the history is facts about the past, not an add happening now (the callbacks stay the live path).
    """
    records = list(friendships)
    for index, record in enumerate(records):
        _check_friendship(index, record)
    pairs = list(dict.fromkeys((r.wecom_userid, r.external_userid) for r in records))
    known: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), _CHUNK):
        known.update(
            session.execute(
                select(WecomFollow.wecom_userid, WecomFollow.external_userid).where(
                    WecomFollow.workspace_id == workspace_id,
                    tuple_(WecomFollow.wecom_userid, WecomFollow.external_userid).in_(
                        pairs[start : start + _CHUNK]
                    ),
                )
            ).tuples()
        )
    fresh: dict[tuple[str, str], FriendshipRecord] = {}
    for record in records:
        fresh.setdefault((record.wecom_userid, record.external_userid), record)
    rows = [r for pair, r in fresh.items() if pair not in known]
    if not rows:
        return 0
    system = Actor(user_id=0, workspace_id=workspace_id, role=Role.OWNER, display_name="WeCom", via="system")
    holders, _missing = customers.customer_ids_by_identity(
        session, actor=system, kind="wecom_external_userid", values=[r.external_userid for r in rows]
    )
    for userid in sorted({r.wecom_userid for r in rows}):
        ensure_staff(session, workspace_id=workspace_id, wecom_userid=userid)
    session.execute(
        insert(WecomFollow),
        [
            {
                "workspace_id": workspace_id,
                "wecom_userid": r.wecom_userid,
                "external_userid": r.external_userid,
                "customer_id": holders.get(r.external_userid),
                "state": r.state,
                "added_at": r.added_at,
                "removed_at": r.removed_at,
                "removed_by": r.removed_by,
            }
            for r in rows
        ],
    )
    events: list[dict[str, Any]] = []
    for r in rows:
        customer_id = holders.get(r.external_userid)
        payload: dict[str, Any] = {"staff": r.wecom_userid}
        added = {**payload, "state": r.state, "contact_way_id": None, "channel_id": None}
        events.append(
            {
                "workspace_id": workspace_id,
                "type": DomainEventType.WECOM_FRIEND_ADDED,
                "customer_id": customer_id,
                "payload": added,
                "occurred_at": r.added_at,
            }
        )
        if r.removed_at is not None:
            events.append(
                {
                    "workspace_id": workspace_id,
                    "type": DomainEventType.WECOM_FRIEND_DELETED
                    if r.removed_by == "staff"
                    else DomainEventType.WECOM_STAFF_DELETED,
                    "customer_id": customer_id,
                    "payload": payload,
                    "occurred_at": r.removed_at,
                }
            )
    record_many(session, events)
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="wecom.friendships_recorded",
        target_type="wecom_follow",
        detail={
            "recorded": len(rows),
            "ended": sum(r.removed_at is not None for r in rows),
            "already_known": len(fresh) - len(rows),
        },
    )
    return len(rows)


@dataclass(frozen=True)
class Friend:
    customer_id: int | None
    wecom_userid: str
    external_userid: str
    state: str | None
    added_at: datetime


def friends(
    session: Session,
    *,
    workspace_id: int,
    customer_ids: Iterable[int] | None = None,
    wecom_userid: str | None = None,
) -> list[Friend]:
    """Current friend relations, of some customers and/or of one staff member."""
    query = select(WecomFollow).where(
        WecomFollow.workspace_id == workspace_id, WecomFollow.removed_at.is_(None)
    )
    if customer_ids is not None:
        query = query.where(WecomFollow.customer_id.in_(list(customer_ids)))
    if wecom_userid is not None:
        query = query.where(WecomFollow.wecom_userid == wecom_userid)
    return [
        Friend(f.customer_id, f.wecom_userid, f.external_userid, f.state, f.added_at)
        for f in session.scalars(query.order_by(WecomFollow.id))
    ]


# --- message content --------------------------------------------------------------------------------


def message_content(text: str | None, attachments: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The `text` and `attachments` of a WeCom message body, checked as WeCom checks them."""
    body: dict[str, Any] = {}
    if text is not None and text.strip():
        if len(text.encode()) > 4000:
            raise ValidationFailed("the text is longer than 4000 bytes", where="text")
        body["text"] = {"content": text}
    items = list(attachments or [])
    if len(items) > MAX_ATTACHMENTS:
        raise ValidationFailed(
            f"{len(items)} attachments; WeCom takes at most {MAX_ATTACHMENTS}", where="attachments"
        )
    for index, item in enumerate(items):
        kind = item.get("msgtype")
        if kind not in ATTACHMENT_KINDS or not isinstance(item.get(kind), dict):
            raise ValidationFailed(
                f"attachment {index + 1} is not one WeCom knows",
                where=f"attachments[{index}]",
                hint='e.g. {"msgtype": "image", "image": {"media_id": "…"}}; kinds: '
                + ", ".join(ATTACHMENT_KINDS),
            )
    if items:
        body["attachments"] = items
    if not body:
        raise ValidationFailed("the message is empty", where="text", hint="give a text or an attachment")
    return body


# --- welcome messages ----------------------------------------------------------------------------------


def send_welcome(
    session: Session,
    *,
    workspace_id: int,
    wecom_userid: str,
    external_userid: str,
    text: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
    client: WecomClient | None = None,
) -> None:
    """Send the welcome message (欢迎语) of a friend just added, with the welcome code of its callback.

    Refused, with the reason, when the callback brought no code (a welcome message is set in WeCom's
    admin console), the 20 seconds have passed, or it was sent already.
    """
    follow = session.scalar(
        select(WecomFollow).where(
            WecomFollow.workspace_id == workspace_id,
            WecomFollow.wecom_userid == wecom_userid,
            WecomFollow.external_userid == external_userid,
        )
    )
    if follow is None:
        raise NotFound(f"{external_userid} is not a friend of {wecom_userid}", where="external_userid")
    if follow.welcome_sent_at is not None:
        raise Conflict(
            "the welcome message was sent already", where="welcome_code", hint="WeCom takes one per add"
        )
    if not follow.welcome_code:
        raise Conflict(
            "the add event brought no welcome code",
            where="welcome_code",
            hint="WeCom sends none when a welcome message is configured for the staff member in the admin console",
        )
    current = now or utcnow()
    if current - follow.added_at > WELCOME_WINDOW:
        raise Conflict(
            f"the welcome window has passed ({int((current - follow.added_at).total_seconds())} s since the add, "
            f"WeCom allows {int(WELCOME_WINDOW.total_seconds())} s)",
            where="welcome_code",
        )
    body = {"welcome_code": follow.welcome_code, **message_content(text, attachments)}
    own = client is None
    client = client or client_for(session, workspace_id=workspace_id)
    try:
        client.post("/cgi-bin/externalcontact/send_welcome_msg", body)
    finally:
        if own:
            client.close()
    follow.welcome_sent_at, follow.welcome_code = current, None
    session.flush()


# --- corp tags -------------------------------------------------------------------------------------


def _siyu_name(text: str | None) -> str:
    # siyu rules name tags "group/name", so a slash inside a WeCom name becomes a dash
    return " ".join((text or "").replace("/", "-").split())[:100] or "-"


@dataclass(frozen=True)
class TagSync:
    groups: int
    tags: int
    created: int


def sync_corp_tags(session: Session, *, actor: Actor, client: WecomClient | None = None) -> TagSync:
    """The corp's tags (get_corp_tag_list) as siyu tag groups and tags of the same names, mapped by
    WeCom tag id; a tag deleted in WeCom is marked deleted (its siyu tag stays, with its customers)."""
    own = client is None
    client = client or client_for(session, workspace_id=actor.workspace_id)
    try:
        body = client.post("/cgi-bin/externalcontact/get_corp_tag_list", {})
    finally:
        if own:
            client.close()
    known = {
        row.wecom_tag_id: row
        for row in session.scalars(
            select(WecomCorpTag).where(WecomCorpTag.workspace_id == actor.workspace_id)
        )
    }
    group_ids: dict[str, int] = {}
    tag_ids: dict[tuple[str, str], int] = {}
    for existing in tags.list_groups(session, workspace_id=actor.workspace_id):
        group_ids[existing.name] = existing.id
        tag_ids.update({(existing.name, t.name): t.id for t in existing.tags})
    seen: set[str] = set()
    created = count = 0
    groups = body.get("tag_group") or []
    for group in groups:
        group_name = _siyu_name(group.get("group_name"))
        for tag in group.get("tag") or []:
            count += 1
            seen.add(tag["id"])
            name = _siyu_name(tag.get("name"))
            row = known.get(tag["id"])
            if row is None:
                row = WecomCorpTag(workspace_id=actor.workspace_id, wecom_tag_id=tag["id"])
                session.add(row)
                known[tag["id"]] = row
            row.wecom_group_id, row.group_name, row.name = group.get("group_id", ""), group_name, name
            row.deleted = bool(tag.get("deleted"))
            row.synced_at = utcnow()
            if row.tag_id is None:
                if group_name not in group_ids:
                    group_ids[group_name] = tags.create_group(session, actor=actor, name=group_name).id
                if (group_name, name) not in tag_ids:
                    tag_ids[(group_name, name)] = tags.create_tag(
                        session, actor=actor, group_id=group_ids[group_name], name=name
                    ).id
                    created += 1
                row.tag_id = tag_ids[(group_name, name)]
    for wecom_tag_id, row in known.items():
        if wecom_tag_id not in seen:
            row.deleted = True
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="wecom.corp_tags_synced",
        target_type="wecom_corp_tag",
        detail={"groups": len(groups), "tags": count, "created": created},
    )
    return TagSync(groups=len(groups), tags=count, created=created)


def wecom_tag_ids(session: Session, *, workspace_id: int, tag_ids: list[int], where: str) -> dict[int, str]:
    """The WeCom corp tag id of each siyu tag id (NotFound naming those that came from no WeCom tag)."""
    mapping = dict(
        session.execute(
            select(WecomCorpTag.tag_id, WecomCorpTag.wecom_tag_id).where(
                WecomCorpTag.workspace_id == workspace_id,
                WecomCorpTag.tag_id.in_(tag_ids),
                WecomCorpTag.deleted.is_(False),
            )
        )
        .tuples()
        .all()
    )
    missing = [t for t in tag_ids if t not in mapping]
    if missing:
        raise NotFound(
            f"tags {missing} are not WeCom corp tags",
            where=where,
            hint="sync the corp tags first (siyu wecom sync); only tags that came from WeCom exist there",
        )
    return {t: w for t, w in mapping.items() if t is not None}


def corp_tags(session: Session, *, workspace_id: int) -> list[tuple[int, str, str]]:
    """(siyu tag id, group name, name) of the synced WeCom corp tags, for choosing who sees a moment."""
    return [
        (int(tag_id), group, name)
        for tag_id, group, name in session.execute(
            select(WecomCorpTag.tag_id, WecomCorpTag.group_name, WecomCorpTag.name)
            .where(
                WecomCorpTag.workspace_id == workspace_id,
                WecomCorpTag.deleted.is_(False),
                WecomCorpTag.tag_id.is_not(None),
            )
            .order_by(WecomCorpTag.group_name, WecomCorpTag.name)
        )
    ]


def mark_tag(
    session: Session,
    *,
    workspace_id: int,
    wecom_userid: str,
    external_userid: str,
    add_tag_ids: list[int] | None = None,
    remove_tag_ids: list[int] | None = None,
    client: WecomClient | None = None,
) -> None:
    """Tag a friend in WeCom (mark_tag) with the corp tags that siyu tags stand for."""
    wanted = list(add_tag_ids or []) + list(remove_tag_ids or [])
    if not wanted:
        raise ValidationFailed("no tags to add or remove", where="add_tag_ids")
    mapping = wecom_tag_ids(session, workspace_id=workspace_id, tag_ids=wanted, where="add_tag_ids")
    body = {
        "userid": wecom_userid,
        "external_userid": external_userid,
        "add_tag": [mapping[t] for t in add_tag_ids or []],
        "remove_tag": [mapping[t] for t in remove_tag_ids or []],
    }
    own = client is None
    client = client or client_for(session, workspace_id=workspace_id)
    try:
        client.post("/cgi-bin/externalcontact/mark_tag", body)
    finally:
        if own:
            client.close()
