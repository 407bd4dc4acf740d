"""The measures of a private domain, computed in SQL where the data lives: repurchase rate and the
intervals between purchases, the private domain's share of GMV and its customers' purchase frequency
against the others, and channel ROI with CAC under first- or last-touch attribution.

Each is defined in docs/metrics.md (formula, window, what counts, a worked example). Read only; built
from the selectables of the orders, customers and channels services.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, case, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.channels import service as channels
from siyu.core.db import days_between, is_postgres
from siyu.core.errors import ValidationFailed
from siyu.customers.service import facts as customer_facts
from siyu.events import service as events
from siyu.metrics.service.filters import MetricFilter, customer_condition
from siyu.metrics.service.reachability import reachable_after, reachable_spans
from siyu.orders import service as orders
from siyu.workspaces import service as workspaces

Attribution = Literal["first_touch", "last_touch"]

# Buckets of days between a customer's consecutive purchases: (label, upper bound in days, inclusive)
INTERVAL_BUCKETS: tuple[tuple[str, float], ...] = (
    ("0-7", 7),
    ("8-14", 14),
    ("15-30", 30),
    ("31-60", 60),
    ("61-90", 90),
    ("91-180", 180),
    ("181+", float("inf")),
)


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed("give the window's start and end with a time zone", where="start/end")
    if end <= start:
        raise ValidationFailed(f"the window ends ({end}) before it starts ({start})", where="end")


def _filtered_purchases(
    *,
    workspace_id: int,
    start: datetime,
    end: datetime,
    channel_id: int | None,
    store_id: int | None,
    filters: MetricFilter | None,
) -> Any:
    """The window's purchases of the order's channel and store asked for (an argument, else the
    filter's), of the customers the filter allows."""
    if filters is not None:
        channel_id = channel_id if channel_id is not None else filters.channel_id
        store_id = store_id if store_id is not None else filters.store_id
    bought = orders.purchases(
        workspace_id=workspace_id, start=start, end=end, channel_id=channel_id, store_id=store_id
    ).subquery()
    return select(bought).where(
        *customer_condition(
            bought.c.customer_id, workspace_id=workspace_id, filters=filters, order_based=True
        )
    )


# --- repurchase ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalBucket:
    label: str
    intervals: int


@dataclass(frozen=True)
class Repurchase:
    """Of the customers who bought in the window, how many bought at least twice in it."""

    buyers: int
    repeat_buyers: int
    rate: float | None  # repeat_buyers / buyers; None without buyers
    purchases: int
    intervals: list[IntervalBucket]  # days between consecutive purchases within the window
    mean_interval_days: float | None


def repurchase(
    session: Session,
    *,
    actor: Actor,
    start: datetime,
    end: datetime,
    channel_id: int | None = None,
    store_id: int | None = None,
    filters: MetricFilter | None = None,
    intervals: bool = True,
) -> Repurchase:
    """Repurchase rate over purchases placed in [start, end), optionally of one channel or store, or of
    the customers and orders `filters` allows; with `intervals=False` without the distribution of
    repurchase intervals (empty, mean None), which costs two more passes over the purchases."""
    actor.require(Permission.READ)
    _check_window(start, end)
    bought = _filtered_purchases(
        workspace_id=actor.workspace_id,
        start=start,
        end=end,
        channel_id=channel_id,
        store_id=store_id,
        filters=filters,
    ).subquery()
    per_customer = (
        select(bought.c.customer_id, func.count().label("purchases"))
        .group_by(bought.c.customer_id)
        .subquery()
    )
    buyers, repeaters, purchases = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((per_customer.c.purchases >= 2, 1), else_=0)), 0),
            func.coalesce(func.sum(per_customer.c.purchases), 0),
        )
    ).one()
    buyers, repeaters = int(buyers), int(repeaters)
    if not intervals:
        return Repurchase(
            buyers=buyers,
            repeat_buyers=repeaters,
            rate=repeaters / buyers if buyers else None,
            purchases=int(purchases),
            intervals=[],
            mean_interval_days=None,
        )
    previous = (
        func.lag(bought.c.placed_at)
        .over(partition_by=bought.c.customer_id, order_by=(bought.c.placed_at, bought.c.order_id))
        .label("previous")
    )
    consecutive = select(bought.c.placed_at, previous).subquery()
    days = days_between(session, consecutive.c.placed_at, consecutive.c.previous)
    bucket = case(
        *[(days <= upper, literal(label)) for label, upper in INTERVAL_BUCKETS[:-1]],
        else_=literal(INTERVAL_BUCKETS[-1][0]),
    ).label("bucket")
    by_bucket: dict[str, int] = {
        str(label): int(count)
        for label, count in session.execute(
            select(bucket, func.count()).where(consecutive.c.previous.is_not(None)).group_by("bucket")
        )
    }
    mean_days = session.scalar(select(func.avg(days)).where(consecutive.c.previous.is_not(None)))
    return Repurchase(
        buyers=buyers,
        repeat_buyers=repeaters,
        rate=repeaters / buyers if buyers else None,
        purchases=int(purchases),
        intervals=[IntervalBucket(label, int(by_bucket.get(label, 0))) for label, _ in INTERVAL_BUCKETS],
        mean_interval_days=float(mean_days) if mean_days is not None else None,
    )


# --- the private domain's share --------------------------------------------------------------------


@dataclass(frozen=True)
class BuyerGroup:
    buyers: int
    purchases: int
    gmv_cents: int
    purchases_per_buyer: float | None


@dataclass(frozen=True)
class PrivateDomainShare:
    """GMV and purchase frequency of the private domain's buyers against the other buyers."""

    private: BuyerGroup
    others: BuyerGroup
    gmv_share: float | None  # private GMV / all GMV
    frequency_ratio: float | None  # purchases per private buyer / purchases per other buyer


def private_domain_share(
    session: Session,
    *,
    actor: Actor,
    start: datetime,
    end: datetime,
    channel_id: int | None = None,
    store_id: int | None = None,
    filters: MetricFilter | None = None,
) -> PrivateDomainShare:
    """Split the window's buyers into the private domain (WeCom friends, official-account followers)
    and the others: their GMV (net of refunds), purchases and purchases per buyer."""
    actor.require(Permission.READ)
    _check_window(start, end)
    bought = _filtered_purchases(
        workspace_id=actor.workspace_id,
        start=start,
        end=end,
        channel_id=channel_id,
        store_id=store_id,
        filters=filters,
    ).subquery()
    members = customer_facts.private_domain_members(workspace_id=actor.workspace_id)
    per_customer = (
        select(
            bought.c.customer_id,
            func.count().label("purchases"),
            func.sum(bought.c.net_cents).label("gmv"),
        )
        .group_by(bought.c.customer_id)
        .subquery()
    )
    # an uncorrelated IN: both engines build the member set once and probe it (a hash or an index);
    # SQLite planned the outer join to the same set as a scan of it per buyer (10 s at 50k customers)
    in_private = case((per_customer.c.customer_id.in_(members), 1), else_=0).label("private")
    rows = session.execute(
        select(in_private, func.count(), func.sum(per_customer.c.purchases), func.sum(per_customer.c.gmv))
        .select_from(per_customer)
        .group_by("private")
    ).all()
    groups = {int(flag): (int(n), int(p or 0), int(g or 0)) for flag, n, p, g in rows}

    def group(flag: int) -> BuyerGroup:
        n, p, g = groups.get(flag, (0, 0, 0))
        return BuyerGroup(buyers=n, purchases=p, gmv_cents=g, purchases_per_buyer=p / n if n else None)

    private, others = group(1), group(0)
    total_gmv = private.gmv_cents + others.gmv_cents
    ratio = None
    if private.purchases_per_buyer is not None and others.purchases_per_buyer:
        ratio = private.purchases_per_buyer / others.purchases_per_buyer
    return PrivateDomainShare(
        private=private,
        others=others,
        gmv_share=private.gmv_cents / total_gmv if total_gmv else None,
        frequency_ratio=ratio,
    )


# --- channel ROI and CAC ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelReturn:
    channel_id: int | None
    channel_key: str
    channel_name: str
    attributed_revenue_cents: int
    cost_cents: int
    new_customers: int
    roi: float | None  # (revenue − cost) / cost; None without cost
    cac_cents: float | None  # cost / new customers; None without new customers


def channel_roi(
    session: Session,
    *,
    actor: Actor,
    start: datetime,
    end: datetime,
    attribution: Attribution = "last_touch",
    window_days: int = 30,
) -> list[ChannelReturn]:
    """Per channel over [start, end): attributed revenue, cost, new customers, ROI and CAC.

    Last touch: a purchase's revenue goes to the channel it was placed through. First touch: to the
    channel that acquired the customer, for purchases within `window_days` of the customer's first
    purchase. New customers: those whose first purchase falls in the window, by acquiring channel.
    Cost: the channel's cost records, pro rata by day over the window (in the workspace's calendar).
    """
    actor.require(Permission.READ)
    _check_window(start, end)
    if attribution not in ("first_touch", "last_touch"):
        raise ValidationFailed(
            f"unknown attribution {attribution!r}", where="attribution", hint="first_touch or last_touch"
        )
    if not 1 <= window_days <= 3650:
        raise ValidationFailed(
            f"an attribution window of {window_days} days is out of range", where="window_days"
        )
    workspace_id = actor.workspace_id
    bought = orders.purchases(workspace_id=workspace_id, start=start, end=end).subquery()
    acquired = customer_facts.acquisitions(workspace_id=workspace_id).subquery()
    if attribution == "last_touch":
        revenue_rows = session.execute(
            select(bought.c.channel_id, func.sum(bought.c.net_cents)).group_by(bought.c.channel_id)
        ).all()
    else:
        age = days_between(session, bought.c.placed_at, acquired.c.acquired_at)
        revenue_rows = session.execute(
            select(acquired.c.channel_id, func.sum(bought.c.net_cents))
            .join(acquired, acquired.c.customer_id == bought.c.customer_id)
            .where(age < window_days)
            .group_by(acquired.c.channel_id)
        ).all()
    new_rows = session.execute(
        select(acquired.c.channel_id, func.count())
        .where(acquired.c.acquired_at >= start, acquired.c.acquired_at < end)
        .group_by(acquired.c.channel_id)
    ).all()
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=workspace_id).timezone)
    costs = channels.cost_by_channel(
        session,
        workspace_id=workspace_id,
        start=start.astimezone(zone).date(),
        end=(end - timedelta(microseconds=1)).astimezone(zone).date(),
    )
    revenue = {channel: int(cents or 0) for channel, cents in revenue_rows}
    new = {channel: int(count) for channel, count in new_rows}
    cost = {row.channel_id: row.cost_cents for row in costs}
    names = channels.channel_names(session, workspace_id=workspace_id)
    result = []
    for channel in sorted(set(revenue) | set(new) | set(cost), key=lambda c: (c is None, c or 0)):
        key, name = names.get(channel, ("(none)", "(none)")) if channel is not None else ("(none)", "(none)")
        spent = cost.get(channel, 0)
        earned = revenue.get(channel, 0)
        acquired_count = new.get(channel, 0)
        result.append(
            ChannelReturn(
                channel_id=channel,
                channel_key=key,
                channel_name=name,
                attributed_revenue_cents=earned,
                cost_cents=spent,
                new_customers=acquired_count,
                roi=(earned - spent) / spent if spent else None,
                cac_cents=spent / acquired_count if spent and acquired_count else None,
            )
        )
    return result


def window_of_dates(
    session: Session, *, workspace_id: int, first_day: date, last_day: date
) -> tuple[datetime, datetime]:
    """[first_day 00:00, the day after last_day 00:00) in the workspace's time zone: the window of a
    date range as people say it ("1 to 31 March", both days included)."""
    if last_day < first_day:
        raise ValidationFailed(f"the range ends ({last_day}) before it starts ({first_day})", where="end")
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=workspace_id).timezone)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=zone)
    after = last_day + timedelta(days=1)
    return start, datetime(after.year, after.month, after.day, tzinfo=zone)


# --- LTV by acquisition cohort ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """Customers acquired in one month (or by one channel over the range), and the cumulative net
    revenue per customer by months since acquisition (offset 0 = the acquisition month)."""

    key: str  # "2026-03" or a channel key
    channel_id: int | None  # the acquiring channel, when grouped by channel
    customers: int
    ltv_cents: list[float]  # per customer, cumulative, for offsets 0 … horizon
    complete: list[bool]  # whether that offset's month has ended for every customer of the cohort


def _month_index(session: Session, column: Any, zone: str, at: datetime) -> ColumnElement[Any]:
    """year·12 + month − 1 of a timestamp in the workspace's calendar. On SQLite the zone's UTC offset
    at `at` stands for the whole range, as in the orders service (exact for Asia/Shanghai)."""
    if is_postgres(session):
        local = func.timezone(zone, column)
        return func.extract("year", local) * 12 + func.extract("month", local) - 1
    offset = at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    shift = f"{int(offset.total_seconds() // 60):+d} minutes"
    return (
        cast(func.strftime("%Y", column, shift), Integer) * 12
        + cast(func.strftime("%m", column, shift), Integer)
        - 1
    )


def _months(
    session: Session, *, workspace_id: int, first: date, last: date
) -> tuple[str, datetime, datetime]:
    """The workspace's zone and [the first day of `first`'s month, the first day after `last`'s month)."""
    zone_name = workspaces.get_workspace(session, workspace_id=workspace_id).timezone
    zone = ZoneInfo(zone_name)
    start = datetime(first.year, first.month, 1, tzinfo=zone)
    after = date(last.year + last.month // 12, last.month % 12 + 1, 1)
    end = datetime(after.year, after.month, 1, tzinfo=zone)
    _check_window(start, end)
    return zone_name, start, end


def ltv_by_cohort(
    session: Session,
    *,
    actor: Actor,
    first_month: date,
    last_month: date,
    horizon: int = 12,
    by: Literal["month", "channel"] = "month",
    today: date | None = None,
) -> list[Cohort]:
    """Historical LTV: for the customers acquired (first purchase) in the months first_month …
    last_month of the workspace's calendar, grouped by acquisition month or by acquiring channel, the
    net revenue of all their purchases up to each month since acquisition, per customer."""
    actor.require(Permission.READ)
    if not 0 <= horizon <= 60:
        raise ValidationFailed(
            f"a horizon of {horizon} months is out of range", where="horizon", hint="0 to 60"
        )
    if by not in ("month", "channel"):
        raise ValidationFailed(f"unknown cohort grouping {by!r}", where="by", hint="month or channel")
    workspace_id = actor.workspace_id
    zone_name, start, end = _months(session, workspace_id=workspace_id, first=first_month, last=last_month)
    zone = ZoneInfo(zone_name)
    acquired = customer_facts.acquisitions(workspace_id=workspace_id).subquery()
    bought = orders.purchases(workspace_id=workspace_id).subquery()
    cohort_month = _month_index(session, acquired.c.acquired_at, zone_name, start)
    order_month = _month_index(session, bought.c.placed_at, zone_name, start)
    offset = (order_month - cohort_month).label("offset")
    group = (cohort_month if by == "month" else acquired.c.channel_id).label("cohort")
    in_range = (acquired.c.acquired_at >= start, acquired.c.acquired_at < end)
    sizes = dict(
        session.execute(select(group, func.count()).where(*in_range).group_by("cohort")).tuples().all()
    )
    revenue: dict[Any, dict[int, int]] = {}
    for cohort, months_since, cents in session.execute(
        select(group, offset, func.sum(bought.c.net_cents))
        .join(bought, bought.c.customer_id == acquired.c.customer_id)
        .where(*in_range, offset <= horizon)
        .group_by("cohort", "offset")
    ):
        revenue.setdefault(cohort, {})[int(months_since)] = int(cents or 0)
    today = today or datetime.now(zone).date()
    today_index = today.year * 12 + today.month - 1
    last_index = last_month.year * 12 + last_month.month - 1
    names = channels.channel_names(session, workspace_id=workspace_id)
    result = []
    for cohort in sorted(sizes, key=lambda c: (c is None, c or 0)):
        size = int(sizes[cohort])
        cumulative, running = [], 0
        for months_since in range(horizon + 1):
            running += revenue.get(cohort, {}).get(months_since, 0)
            cumulative.append(running / size)
        if by == "month":
            index = int(cohort)
            key = f"{index // 12:04d}-{index % 12 + 1:02d}"
            complete = [index + m < today_index for m in range(horizon + 1)]
        else:
            key = names.get(cohort, ("(none)", ""))[0] if cohort is not None else "(none)"
            complete = [last_index + m < today_index for m in range(horizon + 1)]
        channel_id = int(cohort) if by == "channel" and cohort is not None else None
        result.append(
            Cohort(key=key, channel_id=channel_id, customers=size, ltv_cents=cumulative, complete=complete)
        )
    return result


# --- conversion ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """Of the customers who joined in the window (and, with `retained_days`, were still reachable that
    many days later) without having reached the goal before, how many reached it — their first purchase,
    or the first event of the goal type — within `window_days` of joining."""

    joined: int
    already_buyers: int  # goal reached before joining (a shop's existing buyers brought into the pool)
    converted: int
    rate: float | None  # converted / (cohort − already_buyers); the cohort: retained, else joined
    mean_days_to_convert: float | None
    retained: int | None = None  # of the joined, reachable `retained_days` after joining (when asked)
    goal: str = "purchase"


def conversion(
    session: Session,
    *,
    actor: Actor,
    start: datetime,
    end: datetime,
    window_days: int = 30,
    channel_id: int | None = None,
    goal: str = "purchase",
    retained_days: int | None = None,
    filters: MetricFilter | None = None,
) -> Conversion:
    """Conversion (转化率) of the customers who joined the pool in [start, end): the share whose first
    purchase (or first event of type `goal`) came within `window_days` of joining; with
    `retained_days`, of the retained customers only — those still reachable (a WeCom friend, a marketing
    consent in force) `retained_days` after joining. `channel_id`: the customers' first channel."""
    actor.require(Permission.READ)
    _check_window(start, end)
    if not 1 <= window_days <= 3650:
        raise ValidationFailed(
            f"a conversion window of {window_days} days is out of range", where="window_days"
        )
    if retained_days is not None and not 0 <= retained_days <= 3650:
        raise ValidationFailed(
            f"a retention mark of {retained_days} days is out of range", where="retained_days"
        )
    goal = goal.strip() or PURCHASE_STEP
    workspace_id = actor.workspace_id
    joined = customer_facts.joins(workspace_id=workspace_id).subquery()
    conditions: list[ColumnElement[bool]] = [
        joined.c.joined_at >= start,
        joined.c.joined_at < end,
        *customer_condition(joined.c.customer_id, workspace_id=workspace_id, filters=filters),
    ]
    if channel_id is not None:
        conditions.append(joined.c.channel_id == channel_id)
    if goal == PURCHASE_STEP:
        reached_at: Any = joined.c.first_purchase_at
        source: Any = joined
    else:
        happened = events.occurrences(workspace_id=workspace_id, type=goal).subquery()
        firsts = (
            select(happened.c.customer_id, func.min(happened.c.occurred_at).label("first_at"))
            .group_by(happened.c.customer_id)
            .subquery()
        )
        reached_at = firsts.c.first_at
        source = joined.outerjoin(firsts, firsts.c.customer_id == joined.c.customer_id)
    total = int(session.scalar(select(func.count()).select_from(joined).where(*conditions)) or 0)
    retained: int | None = None
    if retained_days is not None:
        spans = reachable_spans(workspace_id=workspace_id)
        conditions.append(
            reachable_after(
                session,
                spans,
                customer_id=joined.c.customer_id,
                joined_at=joined.c.joined_at,
                days=literal(retained_days),
            )
        )
    days = days_between(session, reached_at, joined.c.joined_at)
    before = reached_at < joined.c.joined_at
    within = (reached_at >= joined.c.joined_at) & (days < window_days)
    cohort, already, converted, mean_days = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((before, 1), else_=0)), 0),
            func.coalesce(func.sum(case((within, 1), else_=0)), 0),
            func.avg(case((within, days), else_=None)),
        )
        .select_from(source)
        .where(*conditions)
    ).one()
    cohort, already, converted = int(cohort), int(already), int(converted)
    if retained_days is not None:
        retained = cohort
    eligible = cohort - already
    return Conversion(
        joined=total,
        already_buyers=already,
        converted=converted,
        rate=converted / eligible if eligible else None,
        mean_days_to_convert=float(mean_days) if mean_days is not None else None,
        retained=retained,
        goal=goal,
    )


# --- funnels -------------------------------------------------------------------------------------

PURCHASE_STEP = "purchase"  # a funnel step that is a purchase rather than an event type
MAX_FUNNEL_STEPS = 8


@dataclass(frozen=True)
class FunnelStep:
    step: str
    customers: int
    of_previous: float | None  # customers / customers at the previous step
    of_first: float | None  # customers / customers at the first step


@dataclass(frozen=True)
class FunnelBreakdown:
    key: str  # a channel key or a staff user id, "(none)" when unset
    steps: list[FunnelStep]


@dataclass(frozen=True)
class Funnel:
    steps: list[FunnelStep]
    breakdown: list[FunnelBreakdown]


def funnel(
    session: Session,
    *,
    actor: Actor,
    steps: list[str],
    start: datetime,
    end: datetime,
    window_days: float = 7,
    breakdown: Literal["channel", "owner"] | None = None,
) -> Funnel:
    """An ordered funnel over event types (or "purchase"): a customer enters with their first step-1
    occurrence in [start, end); each next step counts when it occurs at or after the step before and
    within `window_days` of it (the earliest such occurrence is the one the next step follows from)."""
    actor.require(Permission.READ)
    _check_window(start, end)
    cleaned = [s.strip() for s in steps if s.strip()]
    if not 2 <= len(cleaned) <= MAX_FUNNEL_STEPS:
        raise ValidationFailed(
            f"a funnel needs 2 to {MAX_FUNNEL_STEPS} steps, not {len(cleaned)}",
            where="steps",
            hint='event types in order, e.g. ["live_code.scan", "coupon.view", "purchase"]',
        )
    if not 0 < window_days <= 3650:
        raise ValidationFailed(f"a step window of {window_days} days is out of range", where="window_days")
    if breakdown not in (None, "channel", "owner"):
        raise ValidationFailed(f"unknown breakdown {breakdown!r}", where="breakdown", hint="channel or owner")
    workspace_id = actor.workspace_id

    def occurring(step: str) -> Any:
        if step == PURCHASE_STEP:
            bought = orders.purchases(workspace_id=workspace_id).subquery()
            return select(bought.c.customer_id, bought.c.placed_at.label("occurred_at")).subquery()
        return events.occurrences(workspace_id=workspace_id, type=step).subquery()

    first = occurring(cleaned[0])
    reached = (
        select(first.c.customer_id, func.min(first.c.occurred_at).label("at"))
        .where(first.c.occurred_at >= start, first.c.occurred_at < end)
        .group_by(first.c.customer_id)
        .subquery()
    )
    stages = [reached]
    for step in cleaned[1:]:
        previous = stages[-1]
        later = occurring(step)
        gap = days_between(session, later.c.occurred_at, previous.c.at)
        stages.append(
            select(previous.c.customer_id, func.min(later.c.occurred_at).label("at"))
            .join(later, later.c.customer_id == previous.c.customer_id)
            .where(later.c.occurred_at >= previous.c.at, gap <= window_days)
            .group_by(previous.c.customer_id)
            .subquery()
        )
    counts_by_group: dict[Any, list[int]] = {}
    dims = customer_facts.dimensions(workspace_id=workspace_id).subquery()
    for index, stage in enumerate(stages):
        if breakdown is None:
            rows: Sequence[Any] = [(None, session.scalar(select(func.count()).select_from(stage)))]
        else:
            column = dims.c.channel_id if breakdown == "channel" else dims.c.owner_user_id
            rows = (
                session.execute(
                    select(column.label("group_key"), func.count())
                    .select_from(stage)
                    .join(dims, dims.c.customer_id == stage.c.customer_id)
                    .group_by("group_key")
                )
                .tuples()
                .all()
            )
        for group_key, count in rows:
            counts_by_group.setdefault(group_key, [0] * len(stages))[index] = int(count or 0)

    def shaped(counts: list[int]) -> list[FunnelStep]:
        return [
            FunnelStep(
                step=name,
                customers=count,
                of_previous=(count / counts[i - 1] if counts[i - 1] else None) if i else None,
                of_first=(count / counts[0] if counts[0] else None) if i else None,
            )
            for i, (name, count) in enumerate(zip(cleaned, counts, strict=True))
        ]

    if breakdown is None:
        return Funnel(steps=shaped(counts_by_group.get(None, [0] * len(stages))), breakdown=[])
    totals = [sum(c[i] for c in counts_by_group.values()) for i in range(len(stages))]
    names = channels.channel_names(session, workspace_id=workspace_id) if breakdown == "channel" else {}

    def label(group_key: Any) -> str:
        if group_key is None:
            return "(none)"
        return names.get(group_key, (str(group_key), ""))[0] if breakdown == "channel" else str(group_key)

    parts = [
        FunnelBreakdown(key=label(k), steps=shaped(v))
        for k, v in sorted(counts_by_group.items(), key=lambda item: (-item[1][0], label(item[0])))
    ]
    return Funnel(steps=shaped(totals), breakdown=parts)


# --- retention -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionRow:
    """Customers who joined in one month, and the share of them active in each month since."""

    cohort: str  # "2026-03"
    customers: int
    active: list[int]  # per month since joining (0 = the joining month): customers with activity
    share: list[float | None]  # active / customers
    complete: list[bool]  # whether that month has ended


def retention(
    session: Session,
    *,
    actor: Actor,
    first_month: date,
    last_month: date,
    horizon: int = 6,
    activity: Literal["purchase", "any"] = "purchase",
    today: date | None = None,
) -> list[RetentionRow]:
    """Monthly retention cohorts (留存): of the customers who joined (entered the pool) in each month of
    the workspace's calendar, how many were active — bought, or with `activity="any"` bought or had
    any event — in each calendar month after joining, up to `horizon` months."""
    actor.require(Permission.READ)
    if not 0 <= horizon <= 36:
        raise ValidationFailed(
            f"a horizon of {horizon} months is out of range", where="horizon", hint="0 to 36"
        )
    if activity not in ("purchase", "any"):
        raise ValidationFailed(f"unknown activity {activity!r}", where="activity", hint="purchase or any")
    workspace_id = actor.workspace_id
    zone_name, start, end = _months(session, workspace_id=workspace_id, first=first_month, last=last_month)
    zone = ZoneInfo(zone_name)
    joined = customer_facts.joins(workspace_id=workspace_id).subquery()
    bought_sub = orders.purchases(workspace_id=workspace_id).subquery()
    parts = [select(bought_sub.c.customer_id, bought_sub.c.placed_at.label("at"))]
    if activity == "any":
        events_sub = events.activity(workspace_id=workspace_id).subquery()
        parts.append(select(events_sub.c.customer_id, events_sub.c.occurred_at.label("at")))
    active_at = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    cohort_month = _month_index(session, joined.c.joined_at, zone_name, start)
    active_month = _month_index(session, active_at.c.at, zone_name, start)
    in_range = (joined.c.joined_at >= start, joined.c.joined_at < end)
    sizes = {
        int(month): int(count)
        for month, count in session.execute(
            select(cohort_month.label("cohort"), func.count()).where(*in_range).group_by("cohort")
        )
    }
    offset = (active_month - cohort_month).label("offset")
    counts: dict[tuple[int, int], int] = {
        (int(month), int(months_since)): int(count)
        for month, months_since, count in session.execute(
            select(cohort_month.label("cohort"), offset, func.count(func.distinct(joined.c.customer_id)))
            .join(active_at, active_at.c.customer_id == joined.c.customer_id)
            .where(*in_range, offset >= 0, offset <= horizon)
            .group_by("cohort", "offset")
        )
    }
    today = today or datetime.now(zone).date()
    today_index = today.year * 12 + today.month - 1
    rows = []
    for month in sorted(sizes):
        size = sizes[month]
        active = [counts.get((month, m), 0) for m in range(horizon + 1)]
        rows.append(
            RetentionRow(
                cohort=f"{month // 12:04d}-{month % 12 + 1:02d}",
                customers=size,
                active=active,
                share=[a / size if size else None for a in active],
                complete=[month + m < today_index for m in range(horizon + 1)],
            )
        )
    return rows
