"""The customer groups' daily figures from WeCom (群聊数据统计): groupchat/statistic asked one day at a
time for the groups' owners, stored per (workspace, day, owner), a re-fetch overwriting the day.

Why groupchat/statistic (按群主聚合) one day at a time rather than statistic_group_by_day (按自然日聚合):
by_day adds up every owner of its owner_filter, so per-owner figures would cost one call per owner and
30 days; statistic answers up to 100 owners of one day in a call, so the daily fetch is one call per
100 owners and a span never comes near WeCom's 30-day limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.core.db import is_postgres
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom.client import WecomClient
from siyu.wecom.models import WecomGroupChat, WecomGroupStat
from siyu.wecom.service.settings import wecom_client

STAT_PATH = "/cgi-bin/externalcontact/groupchat/statistic"
# WeCom's statistics count days of China Standard Time, whatever the workspace's own zone
WECOM_ZONE = ZoneInfo("Asia/Shanghai")
OWNERS_PER_CALL = 100  # owner_filter.userid_list takes at most 100
PAGE = 1000  # limit: 1 to 1000
KEPT_DAYS = 180  # WeCom keeps the figures of the last 180 days (yesterday back)
FIGURES = (
    "new_chat_cnt",
    "chat_total",
    "chat_has_msg_cnt",
    "new_member_cnt",
    "member_total",
    "member_has_msg_cnt",
    "msg_total",
    "migrate_trainee_chat_cnt",
)


@dataclass(frozen=True)
class GroupStatFetch:
    """What a fetch did: days asked, owners asked per day, rows written (new or overwritten), calls."""

    days: int
    owners: int
    rows: int
    calls: int


def wecom_yesterday(now: datetime | None = None) -> date:
    """The last day WeCom has figures for: yesterday in China Standard Time."""
    return (now or utcnow()).astimezone(WECOM_ZONE).date() - timedelta(days=1)


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=WECOM_ZONE).timestamp())


def stat_owners(session: Session, *, workspace_id: int) -> list[str]:
    """The userids the figures are asked for: every owner of a group synced from WeCom."""
    return list(
        session.scalars(
            select(WecomGroupChat.owner)
            .where(WecomGroupChat.workspace_id == workspace_id, WecomGroupChat.owner != "")
            .distinct()
            .order_by(WecomGroupChat.owner)
        )
    )


def _check_days(days: Sequence[date], *, now: datetime | None) -> None:
    last = wecom_yesterday(now)
    first = last - timedelta(days=KEPT_DAYS - 1)
    for day in days:
        if day > last:
            raise ValidationFailed(
                f"WeCom has no group figures for {day} yet", where="day", hint=f"the last day is {last}"
            )
        if day < first:
            raise ValidationFailed(
                f"WeCom keeps group figures for 180 days: {day} is older",
                where="day",
                hint=f"the first day is {first}",
            )


def _ask_day(client: WecomClient, *, day: date, owners: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Every item of one day for ≤100 owners, page by page; with the number of calls."""
    items: list[dict[str, Any]] = []
    offset = calls = 0
    while True:
        body = client.post(
            STAT_PATH,
            {
                "day_begin_time": _midnight(day),
                "day_end_time": _midnight(day),
                "owner_filter": {"userid_list": owners},
                "order_by": 2,
                "order_asc": 0,
                "offset": offset,
                "limit": PAGE,
            },
        )
        calls += 1
        items.extend(body.get("items") or [])
        next_offset = int(body.get("next_offset") or 0)
        if not body.get("items") or next_offset <= offset or next_offset >= int(body.get("total") or 0):
            return items, calls
        offset = next_offset


def store_group_stats(
    session: Session,
    *,
    workspace_id: int,
    day: date,
    items: Iterable[dict[str, Any]],
    fetched_at: datetime | None = None,
) -> int:
    """Store one day's items as groupchat/statistic shapes them ({owner, data{the eight figures}}),
    overwriting that day's rows of the same owners; how many were written.

    One upsert per day (INSERT … ON CONFLICT DO UPDATE on the unique (workspace, day, owner)), so two
    fetches of the same day at once — the daily job and `siyu wecom group-stats` — both succeed, the
    later one's figures kept, instead of the second failing on the unique key."""
    fetched_at = fetched_at or utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        owner = str(item.get("owner") or "")[:64]
        if not owner:
            continue
        data = item.get("data") or {}
        rows[owner] = {
            "workspace_id": workspace_id,
            "day": day,
            "owner": owner,
            "fetched_at": fetched_at,
            **{name: int(data.get(name) or 0) for name in FIGURES},
        }
    if not rows:
        return 0
    insert = pg_insert if is_postgres(session) else sqlite_insert
    statement = insert(WecomGroupStat).values(list(rows.values()))
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace_id", "day", "owner"],
            set_={name: statement.excluded[name] for name in (*FIGURES, "fetched_at")},
        )
    )
    session.expire_all()  # rows loaded before now show the stored figures on their next read
    return len(rows)


def fetch_group_stats(
    session: Session,
    *,
    workspace_id: int,
    days: Sequence[date],
    client: WecomClient | None = None,
    now: datetime | None = None,
) -> GroupStatFetch:
    """Fetch and store the figures of `days` (each between yesterday and 180 days back, in WeCom's
    calendar) for every group owner, 100 owners a call; a day fetched again is overwritten."""
    _check_days(days, now=now)
    owners = stat_owners(session, workspace_id=workspace_id)
    if not owners or not days:
        return GroupStatFetch(days=len(days), owners=len(owners), rows=0, calls=0)
    client, own = wecom_client(session, workspace_id, client)
    rows = calls = 0
    try:
        for day in sorted(set(days)):
            items: list[dict[str, Any]] = []
            for i in range(0, len(owners), OWNERS_PER_CALL):
                found, made = _ask_day(client, day=day, owners=owners[i : i + OWNERS_PER_CALL])
                items.extend(found)
                calls += made
            rows += store_group_stats(
                session, workspace_id=workspace_id, day=day, items=items, fetched_at=now or utcnow()
            )
    finally:
        if own:
            client.close()
    return GroupStatFetch(days=len(set(days)), owners=len(owners), rows=rows, calls=calls)


def days_fetched(session: Session, *, workspace_id: int, start: date, end: date) -> set[date]:
    """The days of [start, end] that have figures stored."""
    return set(
        session.scalars(
            select(WecomGroupStat.day)
            .where(
                WecomGroupStat.workspace_id == workspace_id,
                WecomGroupStat.day >= start,
                WecomGroupStat.day <= end,
            )
            .distinct()
        )
    )


def daily_group_stats(
    *, workspace_id: int, start: date | None = None, end: date | None = None
) -> Select[Any]:
    """A selectable of the stored figures over [start, end]: `day`, `owner` and the eight figures
    (new_chat_cnt, chat_total, chat_has_msg_cnt, new_member_cnt, member_total, member_has_msg_cnt,
    msg_total, migrate_trainee_chat_cnt), `fetched_at`."""
    query = select(
        WecomGroupStat.day,
        WecomGroupStat.owner,
        *(getattr(WecomGroupStat, name) for name in FIGURES),
        WecomGroupStat.fetched_at,
    ).where(WecomGroupStat.workspace_id == workspace_id)
    if start is not None:
        query = query.where(WecomGroupStat.day >= start)
    if end is not None:
        query = query.where(WecomGroupStat.day <= end)
    return query
