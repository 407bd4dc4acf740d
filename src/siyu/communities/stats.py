"""The figures of communities, in SQL: members and customers matched to the pool, joins, leaves and net
growth by day in the workspace's calendar, the purchases of members (since they joined) against
customers in no group, and activity (群活跃度) from WeCom's daily group figures. Definitions in
docs/communities.md."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, case, cast, distinct, func, select
from sqlalchemy.orm import Session

from siyu.communities import service
from siyu.communities.models import GroupCodeJoin
from siyu.communities.schemas import (
    Activity,
    ActivityDay,
    ActivityFigures,
    ActivityOwner,
    GroupDetail,
    GroupSummary,
    GrowthDay,
    MemberOrders,
    OrderFigures,
)
from siyu.core.db import is_postgres
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers.service import facts as customer_facts
from siyu.orders import service as orders
from siyu.wecom import service as wecom
from siyu.wecom.service.groups import EXTERNAL_MEMBER
from siyu.workspaces import service as workspaces

MAX_DAYS = 366
DEFAULT_DAYS = 30


def zone_of(session: Session, *, workspace_id: int) -> str:
    return workspaces.get_workspace(session, workspace_id=workspace_id).timezone


def today(session: Session, *, workspace_id: int) -> date:
    return utcnow().astimezone(ZoneInfo(zone_of(session, workspace_id=workspace_id))).date()


def period(session: Session, *, workspace_id: int, start: date | None, end: date | None) -> tuple[date, date]:
    """[start, end] as given, by default the last 30 days of the workspace's calendar."""
    end = end or today(session, workspace_id=workspace_id)
    return start or end - timedelta(days=DEFAULT_DAYS - 1), end


def _local_day(session: Session, column: Any, zone: str, at: datetime) -> Any:
    """The calendar day of a timestamp in the workspace's zone (on SQLite the zone's offset at `at`
    stands for the whole range, as in the other figures: exact for zones without DST)."""
    if is_postgres(session):
        return cast(func.timezone(zone, column), Date)
    offset = at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def window(zone: str, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the zone; refused when reversed or over a year."""
    if end < start:
        raise ValidationFailed(f"the period ends ({end}) before it starts ({start})", where="end")
    if (end - start).days >= MAX_DAYS:
        raise ValidationFailed(
            f"a period of {(end - start).days + 1} days is too long", where="end", hint=f"≤ {MAX_DAYS} days"
        )
    tz = ZoneInfo(zone)
    return datetime(start.year, start.month, start.day, tzinfo=tz), datetime(
        end.year, end.month, end.day, tzinfo=tz
    ) + timedelta(days=1)


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _external_changes(
    *,
    workspace_id: int,
    chat_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    changes = wecom.member_changes(
        workspace_id=workspace_id, chat_id=chat_id, start=start, end=end
    ).subquery()
    return changes, changes.c.member_type == EXTERNAL_MEMBER


def group_summaries(session: Session, *, workspace_id: int, start: date, end: date) -> list[GroupSummary]:
    """Every group of the workspace with its figures over [start, end]: present members, customers
    matched, joins and leaves of external members, and the matched members' purchases since joining."""
    zone = zone_of(session, workspace_id=workspace_id)
    since, until = window(zone, start, end)
    changes, external = _external_changes(workspace_id=workspace_id, start=since, end=until)
    moves = {
        row.chat_id: (row.joins, row.leaves)
        for row in session.execute(
            select(
                changes.c.chat_id,
                _count(external & (changes.c.change == "join")).label("joins"),
                _count(external & (changes.c.change == "leave")).label("leaves"),
            ).group_by(changes.c.chat_id)
        )
    }
    members = service.matched_members(workspace_id=workspace_id).subquery()
    customers = dict(
        session.execute(
            select(members.c.chat_id, func.count(distinct(members.c.customer_id))).group_by(members.c.chat_id)
        )
        .tuples()
        .all()
    )
    bought = orders.purchases(workspace_id=workspace_id, start=since, end=until).subquery()
    spend = {
        row.chat_id: (row.orders, row.gmv)
        for row in session.execute(
            select(
                members.c.chat_id,
                func.count(distinct(bought.c.order_id)).label("orders"),
                func.coalesce(func.sum(bought.c.net_cents), 0).label("gmv"),
            )
            .join(
                bought,
                (bought.c.customer_id == members.c.customer_id) & (bought.c.placed_at >= members.c.joined_at),
            )
            .group_by(members.c.chat_id)
        )
    }
    tags = service.tags_by_group(session, workspace_id=workspace_id)
    expiries = service.qr_expiries(session, workspace_id=workspace_id)
    out = []
    for group in service.list_groups(session, workspace_id=workspace_id):
        joins, leaves = moves.get(group.chat_id, (0, 0))
        order_count, gmv = spend.get(group.chat_id, (0, 0))
        out.append(
            GroupSummary(
                chat_id=group.chat_id,
                name=group.name,
                owner=group.owner,
                members=group.member_count,
                external_members=group.external_member_count,
                customers=customers.get(group.chat_id, 0),
                joins=int(joins),
                leaves=int(leaves),
                net_growth=int(joins) - int(leaves),
                member_orders=int(order_count),
                member_gmv_cents=int(gmv),
                tags=tags.get(group.chat_id, []),
                dismissed=group.dismissed_at is not None,
                has_qr=group.chat_id in expiries,
                qr_expires_at=expiries.get(group.chat_id),
            )
        )
    return out


def growth(session: Session, *, workspace_id: int, chat_id: str, start: date, end: date) -> list[GrowthDay]:
    """Every day of [start, end] (zeros included): joins and leaves of external members, the net, and
    the external members at the end of the day (today's count walked back through the changes)."""
    group = service.get_group(session, workspace_id=workspace_id, chat_id=chat_id)
    zone = zone_of(session, workspace_id=workspace_id)
    since, _until = window(zone, start, end)
    changes, external = _external_changes(workspace_id=workspace_id, chat_id=chat_id, start=since)
    day = _local_day(session, changes.c.occurred_at, zone, since).label("day")
    by_day: dict[date, tuple[int, int]] = {}
    later_joins = later_leaves = 0
    for row in session.execute(
        select(
            day,
            _count(changes.c.change == "join").label("joins"),
            _count(changes.c.change == "leave").label("leaves"),
        )
        .where(external)
        .group_by(day)
    ):
        on = _as_date(row.day)
        if on > end:
            later_joins, later_leaves = later_joins + int(row.joins), later_leaves + int(row.leaves)
        else:
            by_day[on] = (int(row.joins), int(row.leaves))
    members_at_end = group.external_member_count - later_joins + later_leaves
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    out: list[GrowthDay] = []
    running = members_at_end
    for on in reversed(days):
        joins, leaves = by_day.get(on, (0, 0))
        out.append(GrowthDay(day=on, joins=joins, leaves=leaves, net=joins - leaves, members=running))
        running -= joins - leaves
    return list(reversed(out))


def _figures(session: Session, cohort: Any, bought: Any, *, since_join: bool) -> OrderFigures:
    condition = bought.c.customer_id == cohort.c.customer_id
    if since_join:
        condition = condition & (bought.c.placed_at >= cohort.c.joined_at)
    per_buyer = (
        select(
            bought.c.customer_id,
            func.count(distinct(bought.c.order_id)).label("orders"),
            func.sum(bought.c.net_cents).label("gmv"),
        )
        .select_from(cohort)
        .join(bought, condition)
        .group_by(bought.c.customer_id)
        .subquery()
    )
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(per_buyer.c.orders), 0),
            func.coalesce(func.sum(per_buyer.c.gmv), 0),
            _count(per_buyer.c.orders >= 2),
        )
    ).one()
    customers = session.scalar(select(func.count(distinct(cohort.c.customer_id)))) or 0
    buyers, order_count, gmv, repeaters = (int(v) for v in row)
    return OrderFigures(
        customers=customers,
        buyers=buyers,
        orders=order_count,
        gmv_cents=gmv,
        repurchase_rate=repeaters / buyers if buyers else None,
    )


def member_orders(
    session: Session, *, workspace_id: int, chat_id: str, start: date, end: date
) -> MemberOrders:
    """What a group brings over [start, end]: purchases of its matched members placed after they joined,
    against the purchases of the live customers who are in no group. Repurchase rate: buyers with two
    purchases or more in the period / buyers."""
    service.get_group(session, workspace_id=workspace_id, chat_id=chat_id)
    zone = zone_of(session, workspace_id=workspace_id)
    since, until = window(zone, start, end)
    bought = orders.purchases(workspace_id=workspace_id, start=since, end=until).subquery()
    matched = service.matched_members(workspace_id=workspace_id, chat_id=chat_id).subquery()
    members = (
        select(matched.c.customer_id, func.min(matched.c.joined_at).label("joined_at"))
        .where(matched.c.customer_id.is_not(None))
        .group_by(matched.c.customer_id)
        .subquery()
    )
    live = customer_facts.joins(workspace_id=workspace_id).subquery()
    in_groups = service.member_condition(workspace_id=workspace_id)
    others = select(live.c.customer_id).where(live.c.customer_id.not_in(in_groups)).subquery()
    return MemberOrders(
        start=start,
        end=end,
        members=_figures(session, members, bought, since_join=True),
        non_members=_figures(session, others, bought, since_join=False),
    )


def group_detail(session: Session, *, workspace_id: int, chat_id: str, start: date, end: date) -> GroupDetail:
    """One group's summary, its growth by day and its members' orders over [start, end]."""
    service.get_group(session, workspace_id=workspace_id, chat_id=chat_id)
    summaries = group_summaries(session, workspace_id=workspace_id, start=start, end=end)
    summary = next(s for s in summaries if s.chat_id == chat_id)
    return GroupDetail(
        summary=summary,
        growth=growth(session, workspace_id=workspace_id, chat_id=chat_id, start=start, end=end),
        orders=member_orders(session, workspace_id=workspace_id, chat_id=chat_id, start=start, end=end),
    )


def code_joins_by_day(
    session: Session, *, workspace_id: int, code_id: int, start: date, end: date
) -> list[tuple[date, str | None, int]]:
    """Hand-outs of one code per day and group (none: turned away), over [start, end]."""
    zone = zone_of(session, workspace_id=workspace_id)
    since, until = window(zone, start, end)
    day = _local_day(session, GroupCodeJoin.joined_at, zone, since).label("day")
    rows = session.execute(
        select(day, GroupCodeJoin.chat_id, func.count())
        .where(
            GroupCodeJoin.workspace_id == workspace_id,
            GroupCodeJoin.code_id == code_id,
            GroupCodeJoin.joined_at >= since,
            GroupCodeJoin.joined_at < until,
        )
        .group_by(day, GroupCodeJoin.chat_id)
        .order_by(day)
    )
    return [(_as_date(d), chat, int(n)) for d, chat, n in rows]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _activity_columns(stat: Any) -> list[Any]:
    return [
        func.coalesce(func.sum(stat.c.msg_total), 0).label("messages"),
        func.coalesce(func.sum(stat.c.chat_total), 0).label("groups"),
        func.coalesce(func.sum(stat.c.chat_has_msg_cnt), 0).label("groups_with_messages"),
        func.coalesce(func.sum(stat.c.member_total), 0).label("members"),
        func.coalesce(func.sum(stat.c.member_has_msg_cnt), 0).label("members_who_spoke"),
    ]


def _activity_figures(row: Any) -> dict[str, Any]:
    messages, groups, active_groups, members, speakers = (
        int(row.messages),
        int(row.groups),
        int(row.groups_with_messages),
        int(row.members),
        int(row.members_who_spoke),
    )
    return {
        "messages": messages,
        "groups": groups,
        "groups_with_messages": active_groups,
        "group_share": _share(active_groups, groups),
        "members": members,
        "members_who_spoke": speakers,
        "member_share": _share(speakers, members),
    }


def activity(session: Session, *, workspace_id: int, start: date, end: date) -> Activity:
    """Activity over [start, end] from the daily figures WeCom counts (群聊数据统计, fetched by the
    daily job): messages, groups with messages / groups (活跃群占比) and members who spoke / members
    (活跃成员占比), for the period, per day (every day, zeros where nothing was fetched) and per owner
    (most messages first). Over several days a share is the sum of the days' numerators over the sum
    of their denominators, so a big day weighs more than a quiet one."""
    window(zone_of(session, workspace_id=workspace_id), start, end)  # the same period checks
    stat = wecom.daily_group_stats(workspace_id=workspace_id, start=start, end=end).subquery()
    columns = _activity_columns(stat)
    total = ActivityFigures(**_activity_figures(session.execute(select(*columns)).one()))
    by_day = {
        _as_date(row.day): _activity_figures(row)
        for row in session.execute(select(stat.c.day, *columns).group_by(stat.c.day))
    }
    empty = ActivityFigures(
        messages=0,
        groups=0,
        groups_with_messages=0,
        group_share=None,
        members=0,
        members_who_spoke=0,
        member_share=None,
    ).model_dump()
    days = [
        ActivityDay(day=on, **by_day.get(on, empty))
        for on in (start + timedelta(days=i) for i in range((end - start).days + 1))
    ]
    owners = [
        ActivityOwner(owner=row.owner, **_activity_figures(row))
        for row in session.execute(
            select(stat.c.owner, *columns)
            .group_by(stat.c.owner)
            .order_by(func.sum(stat.c.msg_total).desc(), stat.c.owner)
        )
    ]
    return Activity(start=start, end=end, total=total, days=days, owners=owners)
