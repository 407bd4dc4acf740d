"""The measures of reachability (who the brand can still reach for free): pass-through rate (通过率)
per channel and per live code, and cohort tables of the customers still reachable and still active
N days after joining, weekly or monthly. Definitions in docs/metrics.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    case,
    cast,
    distinct,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.channels import service as channels
from siyu.core.db import days_between, is_postgres, unindexed
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers.service import facts as customer_facts
from siyu.events import service as events
from siyu.livecodes import service as livecodes
from siyu.livecodes import stats as livecode_stats
from siyu.metrics.service.filters import MetricFilter, customer_condition
from siyu.orders import service as orders
from siyu.wecom import service as wecom
from siyu.workspaces import service as workspaces

Period = Literal["week", "month"]
PERIOD_DAYS = {"week": 7, "month": 30}  # the N of "after N days" per cohort period
MAX_WINDOW_DAYS = 3650


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed("give the window's start and end with a time zone", where="start/end")
    if end <= start:
        raise ValidationFailed(f"the window ends ({end}) before it starts ({start})", where="end")


def reachable_spans(*, workspace_id: int) -> Any:
    """Every span of time in which a customer was reachable at no cost: a WeCom friendship (until either
    side deleted the other) or a marketing consent in force on a contact channel (until withdrawn), as
    (`customer_id`, `from_at`, `until_at` NULL while it lasts). A subquery."""
    return union_all(
        wecom.friend_spans(workspace_id=workspace_id),
        customer_facts.marketing_consent_spans(workspace_id=workspace_id),
    ).subquery()


def reachable_after(
    session: Session, spans: Any, *, customer_id: Any, joined_at: Any, days: Any
) -> ColumnElement[bool]:
    """EXISTS a span of the customer that holds `days` days after `joined_at` (from at or before that
    moment, until after it)."""
    since = days_between(session, spans.c.from_at, joined_at)
    until = days_between(session, spans.c.until_at, joined_at)
    return (
        select(literal(1))
        .where(
            spans.c.customer_id == customer_id,
            since <= days,
            spans.c.until_at.is_(None) | (until > days),
        )
        .exists()
    )


# --- pass-through rate -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PassThroughRow:
    """Of the people one channel or live code reached, how many joined the private domain."""

    key: str  # a channel key or a live code's name
    channel_id: int | None
    live_code_id: int | None
    reached: int
    joined: int
    rate: float | None  # joined / reached; None when nobody was reached


@dataclass(frozen=True)
class PassThrough:
    window_days: int
    channels: list[PassThroughRow]  # known people: customers who entered the pool through the channel
    codes: list[PassThroughRow]  # anonymous scanners of each live code
    reached: int  # all channels
    joined: int
    rate: float | None


def _became_reachable(
    session: Session, *, workspace_id: int, start: datetime, end: datetime, window_days: int
) -> Any:
    """The customers who joined in [start, end) and were reachable at some moment from joining until
    `window_days` later, as one uncorrelated set: a correlated EXISTS would compute the spans (a window
    function over the consents) again for every joiner. The joiners' range must not drive the join
    (`core.db.unindexed`): the spans are read once and find their customer by key."""
    joiners = customer_facts.joins(workspace_id=workspace_id).subquery()
    spans = reachable_spans(workspace_id=workspace_id)
    since = days_between(session, spans.c.from_at, joiners.c.joined_at)
    until = days_between(session, spans.c.until_at, joiners.c.joined_at)
    joined_at = unindexed(session, joiners.c.joined_at)
    return (
        select(spans.c.customer_id)
        .join(joiners, joiners.c.customer_id == spans.c.customer_id)
        .where(
            joined_at >= start,
            joined_at < end,
            since < window_days,
            spans.c.until_at.is_(None) | (until >= 0),
        )
    )


def pass_through(
    session: Session,
    *,
    actor: Actor,
    start: datetime,
    end: datetime,
    window_days: int = 7,
    filters: MetricFilter | None = None,
    per_code: bool = True,
) -> PassThrough:
    """Pass-through rate (通过率) over [start, end).

    Per channel: the customers who entered the pool in the window with that first channel (imported
    leads, visitors and clickers recognised by an event, scanners who added staff) are *reached*; those
    reachable (a WeCom friend or a marketing consent in force) at some moment from joining until
    `window_days` later have *joined*. Per live code: the distinct scanners of the window are reached;
    the distinct customers who added staff through the code in the window have joined (a scan is
    anonymous, so the two sides are counted, not matched). A segment filter leaves the codes out, and
    so does `per_code=False` (the caller needs the channels only).
    """
    actor.require(Permission.READ)
    _check_window(start, end)
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValidationFailed(f"a window of {window_days} days is out of range", where="window_days")
    filters = filters or MetricFilter()
    workspace_id = actor.workspace_id
    joins = customer_facts.joins(workspace_id=workspace_id).subquery()
    became_reachable = _became_reachable(
        session, workspace_id=workspace_id, start=start, end=end, window_days=window_days
    )
    joined_flag = func.coalesce(func.sum(case((joins.c.customer_id.in_(became_reachable), 1), else_=0)), 0)
    channel_rows = session.execute(
        select(joins.c.channel_id, func.count(), joined_flag)
        .where(
            joins.c.joined_at >= start,
            joins.c.joined_at < end,
            *customer_condition(joins.c.customer_id, workspace_id=workspace_id, filters=filters),
        )
        .group_by(joins.c.channel_id)
    ).all()
    names = channels.channel_names(session, workspace_id=workspace_id)

    def channel_key(channel_id: int | None) -> str:
        return names.get(channel_id, ("(none)", ""))[0] if channel_id is not None else "(none)"

    by_channel = [
        PassThroughRow(
            key=channel_key(channel_id),
            channel_id=channel_id,
            live_code_id=None,
            reached=int(reached),
            joined=int(joined),
            rate=int(joined) / int(reached) if reached else None,
        )
        for channel_id, reached, joined in sorted(channel_rows, key=lambda row: (row[0] is None, row[0] or 0))
    ]
    codes: list[PassThroughRow] = []
    if per_code and filters.segment_id is None:
        codes = _code_rows(session, workspace_id=workspace_id, start=start, end=end, filters=filters)
    reached_all = sum(row.reached for row in by_channel)
    joined_all = sum(row.joined for row in by_channel)
    return PassThrough(
        window_days=window_days,
        channels=by_channel,
        codes=codes,
        reached=reached_all,
        joined=joined_all,
        rate=joined_all / reached_all if reached_all else None,
    )


def pass_through_by_period(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    first: date,
    last: date,
    window_days: int = 7,
    filters: MetricFilter | None = None,
) -> dict[str, tuple[int, int]]:
    """The channels' pass-through (as `pass_through(per_code=False)` gives it for each period alone)
    of every week or month from the one holding `first` to the one holding `last`, in one statement:
    {period label: (reached, joined)}, periods without joiners left out."""
    actor.require(Permission.READ)
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValidationFailed(f"a window of {window_days} days is out of range", where="window_days")
    workspace_id = actor.workspace_id
    zone_name = workspaces.get_workspace(session, workspace_id=workspace_id).timezone
    zone = ZoneInfo(zone_name)
    first_index, last_index = period_of(first, period), period_of(last, period)
    start_day, after_day = period_start(first_index, period), period_start(last_index + 1, period)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone)
    end = datetime(after_day.year, after_day.month, after_day.day, tzinfo=zone)
    joins = customer_facts.joins(workspace_id=workspace_id).subquery()
    became_reachable = _became_reachable(
        session, workspace_id=workspace_id, start=start, end=end, window_days=window_days
    )
    index = period_index(session, joins.c.joined_at, period=period, zone=zone_name, at=start).label("period")
    joined_flag = func.coalesce(func.sum(case((joins.c.customer_id.in_(became_reachable), 1), else_=0)), 0)
    rows = session.execute(
        select(index, func.count(), joined_flag)
        .where(
            joins.c.joined_at >= start,
            joins.c.joined_at < end,
            *customer_condition(joins.c.customer_id, workspace_id=workspace_id, filters=filters),
        )
        .group_by("period")
    ).all()
    return {_period_label(int(i), period): (int(reached), int(joined)) for i, reached, joined in rows}


def _code_rows(
    session: Session, *, workspace_id: int, start: datetime, end: datetime, filters: MetricFilter
) -> list[PassThroughRow]:
    scans = livecode_stats.scan_rows(workspace_id=workspace_id).subquery()
    adds = livecode_stats.add_rows(workspace_id=workspace_id).subquery()
    scan_where: list[ColumnElement[bool]] = [scans.c.scanned_at >= start, scans.c.scanned_at < end]
    add_where: list[ColumnElement[bool]] = [adds.c.added_at >= start, adds.c.added_at < end]
    if filters.channel_id is not None:
        scan_where.append(scans.c.channel_id == filters.channel_id)
        add_where.append(adds.c.channel_id == filters.channel_id)
    if filters.store_id is not None:
        scan_where.append(scans.c.store_id == filters.store_id)
        add_where.append(adds.c.store_id == filters.store_id)
    if filters.owner_user_id is not None:
        # the staff member the scan or the add went to
        scan_where.append(scans.c.staff_user_id == filters.owner_user_id)
        add_where.append(adds.c.staff_user_id == filters.owner_user_id)
    scanners = dict(
        session.execute(
            select(scans.c.live_code_id, func.count(distinct(scans.c.visitor_hash)))
            .where(*scan_where)
            .group_by(scans.c.live_code_id)
        )
        .tuples()
        .all()
    )
    added = dict(
        session.execute(
            select(adds.c.live_code_id, func.count(distinct(adds.c.customer_id)))
            .where(*add_where)
            .group_by(adds.c.live_code_id)
        )
        .tuples()
        .all()
    )
    codes = {c.id: c for c in livecodes.list_live_codes(session, workspace_id=workspace_id)}
    rows = []
    for code_id in sorted(set(scanners) | set(added)):
        code = codes.get(code_id)
        reached, joined = int(scanners.get(code_id, 0)), int(added.get(code_id, 0))
        rows.append(
            PassThroughRow(
                key=code.name if code else str(code_id),
                channel_id=code.channel_id if code else None,
                live_code_id=code_id,
                reached=reached,
                joined=joined,
                rate=joined / reached if reached else None,
            )
        )
    return rows


# --- cohort tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortRow:
    """The customers who joined in one week or month, and for each N in `days` how many of them were
    still reachable N days after joining and how many were active in the period before that mark."""

    cohort: str  # "2026-03" or the Monday of the week, "2026-03-02"
    customers: int
    days: list[int]  # N: 7, 14, … (weeks) or 30, 60, … (months)
    reachable: list[int]
    active: list[int]
    reachable_share: list[float | None]
    active_share: list[float | None]
    complete: list[bool]  # whether N days have passed for every customer of the cohort


_MONDAY = date(1970, 1, 5)


def _local_shift(zone: str, at: datetime) -> str:
    offset = at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return f"{int(offset.total_seconds() // 60):+d} minutes"


def period_index(session: Session, column: Any, *, period: Period, zone: str, at: datetime) -> Any:
    """The number of the week (Monday to Sunday, counted from 5 January 1970) or of the month
    (year·12 + month − 1) a timestamp falls in, in the workspace's calendar. On SQLite the zone's UTC
    offset at `at` stands for the whole range (exact for Asia/Shanghai)."""
    if is_postgres(session):
        local = func.timezone(zone, column)
        if period == "month":
            return cast(func.extract("year", local) * 12 + func.extract("month", local) - 1, Integer)
        days = cast(func.floor(func.extract("epoch", func.date_trunc("day", local)) / 86400.0), Integer)
        return cast(func.floor((days - (_MONDAY - date(1970, 1, 1)).days) / 7.0), Integer)
    shift = _local_shift(zone, at)
    if period == "month":
        return (
            cast(func.strftime("%Y", column, shift), Integer) * 12
            + cast(func.strftime("%m", column, shift), Integer)
            - 1
        )
    days = cast(func.julianday(func.date(column, shift)) - func.julianday(_MONDAY.isoformat()), Integer)
    return days // 7  # every day counted is after 5 January 1970: no negative division


def period_start(index: int, period: Period) -> date:
    """The first day of a week or month number (see period_index)."""
    if period == "month":
        return date(index // 12, index % 12 + 1, 1)
    return _MONDAY + timedelta(days=7 * index)


def period_of(day: date, period: Period) -> int:
    if period == "month":
        return day.year * 12 + day.month - 1
    return (day - _MONDAY).days // 7


def _period_label(index: int, period: Period) -> str:
    first = period_start(index, period)
    return f"{first.year:04d}-{first.month:02d}" if period == "month" else first.isoformat()


def cohort_table(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    first: date,
    last: date,
    horizon: int = 8,
    filters: MetricFilter | None = None,
    now: datetime | None = None,
) -> list[CohortRow]:
    """Retention (留存率) cohort table: the customers who joined (entered the pool) in each week or month
    of the workspace's calendar from the one holding `first` to the one holding `last`; for
    k = 1 … horizon and N = k·7 (weeks) or k·30 (months) days: how many were reachable N days after
    joining, and how many were active (a purchase or any event) from N − 7 (or N − 30) days after
    joining up to N days."""
    actor.require(Permission.READ)
    if period not in PERIOD_DAYS:
        raise ValidationFailed(f"unknown cohort period {period!r}", where="period", hint="week or month")
    if not 1 <= horizon <= 52:
        raise ValidationFailed(
            f"a horizon of {horizon} periods is out of range", where="horizon", hint="1 to 52"
        )
    if last < first:
        raise ValidationFailed(f"the range ends ({last}) before it starts ({first})", where="last")
    workspace_id = actor.workspace_id
    zone_name = workspaces.get_workspace(session, workspace_id=workspace_id).timezone
    zone = ZoneInfo(zone_name)
    first_index, last_index = period_of(first, period), period_of(last, period)
    if last_index - first_index >= 120:
        raise ValidationFailed(
            f"{last_index - first_index + 1} cohorts are too many", where="last", hint="at most 120"
        )
    start_day, after_day = period_start(first_index, period), period_start(last_index + 1, period)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone)
    end = datetime(after_day.year, after_day.month, after_day.day, tzinfo=zone)
    length = PERIOD_DAYS[period]
    now = now or utcnow()

    joins = customer_facts.joins(workspace_id=workspace_id).subquery()
    cohort = period_index(session, joins.c.joined_at, period=period, zone=zone_name, at=start).label("cohort")
    in_range = (
        joins.c.joined_at >= start,
        joins.c.joined_at < end,
        *customer_condition(joins.c.customer_id, workspace_id=workspace_id, filters=filters),
    )
    sizes = {
        int(index): int(count)
        for index, count in session.execute(select(cohort, func.count()).where(*in_range).group_by("cohort"))
    }
    # each count is one grouped statement over the (customer, N) pairs, built once as a set: the
    # joiners of the range with their reachable spans (a few per customer, crossed with the marks), and
    # with their activity, each act placed at its mark by arithmetic (no crossing). A test per joiner and
    # N (EXISTS, or `(customer, N) IN (pairs)`) left the plan to the engine, and SQLite chose a scan of
    # the pairs per joiner for some horizons (minutes at 50k customers; docs/performance.md).
    joiners = customer_facts.joins(workspace_id=workspace_id).subquery()
    # the joiners' range must not drive the join: the spans and the activity are subqueries without
    # an index, to be read once and joined to each customer by its key (core.db.unindexed)
    joined_at = unindexed(session, joiners.c.joined_at)
    joined = (
        joined_at >= start,
        joined_at < end,
        *customer_condition(joiners.c.customer_id, workspace_id=workspace_id, filters=filters),
    )
    joiner_cohort = period_index(session, joiners.c.joined_at, period=period, zone=zone_name, at=start).label(
        "cohort"
    )
    marks = union_all(*(select(literal(k * length).label("n")) for k in range(1, horizon + 1))).subquery()
    spans = reachable_spans(workspace_id=workspace_id)
    since = days_between(session, spans.c.from_at, joiners.c.joined_at)
    until = days_between(session, spans.c.until_at, joiners.c.joined_at)
    reachable_counts = (
        select(joiner_cohort, marks.c.n, func.count(distinct(joiners.c.customer_id)))
        .select_from(joiners)
        .join(spans, spans.c.customer_id == joiners.c.customer_id)
        .join(marks, true())
        .where(*joined, since <= marks.c.n, spans.c.until_at.is_(None) | (until > marks.c.n))
        .group_by("cohort", marks.c.n)
    )
    bought = orders.purchases(workspace_id=workspace_id).subquery()
    happened = events.activity(workspace_id=workspace_id).subquery()
    activity = union_all(
        select(bought.c.customer_id, bought.c.placed_at.label("at")),
        select(happened.c.customer_id, happened.c.occurred_at.label("at")),
    ).subquery()
    age = days_between(session, activity.c.at, joiners.c.joined_at)
    # active at mark N = k·length: an act at an age in [N − length, N) days
    whole_periods = func.floor(age / length) if is_postgres(session) else cast(age / length, Integer)
    acts = (
        select(joiners.c.customer_id, joiner_cohort, ((whole_periods + 1) * length).label("n"))
        .select_from(joiners)
        .join(activity, activity.c.customer_id == joiners.c.customer_id)
        .where(*joined, age >= 0, age < horizon * length)
        .distinct()
        .subquery()
    )
    active_counts = select(acts.c.cohort, acts.c.n, func.count()).group_by(acts.c.cohort, acts.c.n)
    reachable: dict[tuple[int, int], int] = {
        (int(index), int(n)): int(count) for index, n, count in session.execute(reachable_counts)
    }
    active: dict[tuple[int, int], int] = {
        (int(index), int(n)): int(count) for index, n, count in session.execute(active_counts)
    }
    days = [k * length for k in range(1, horizon + 1)]
    rows = []
    for index in sorted(sizes):
        size = sizes[index]
        ends = period_start(index + 1, period)
        cohort_end = datetime(ends.year, ends.month, ends.day, tzinfo=zone)
        still = [reachable.get((index, n), 0) for n in days]
        busy = [active.get((index, n), 0) for n in days]
        rows.append(
            CohortRow(
                cohort=_period_label(index, period),
                customers=size,
                days=days,
                reachable=still,
                active=busy,
                reachable_share=[c / size for c in still],
                active_share=[c / size for c in busy],
                complete=[cohort_end + timedelta(days=n) <= now for n in days],
            )
        )
    return rows
