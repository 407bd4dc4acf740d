"""The overview figures: customers, orders, net revenue by channel per month, and the dashboard around
them — the four metrics with their trends, GMV share, channel ROI, retention cohorts, RFM and lifecycle.

Read only; built from the other domains' services (every figure is counted in SQL there), so the
number of queries does not grow with the customers, orders or channels of the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.lifecycle import service as lifecycle
from siyu.metrics import service as metrics
from siyu.orders import service as orders
from siyu.rfm import service as rfm
from siyu.workspaces import service as workspaces

MAX_MONTHS = 36
MAX_TREND_MONTHS = 12  # the cards' trend lines: the period's months, at most a year
COHORT_MONTHS = 6  # monthly cohorts in the heat map, and as many marks (30, 60, … days) after joining
METRIC_KEYS = ("pass_through", "retention", "conversion", "repurchase")


@dataclass
class ChannelSeries:
    """Net revenue of one channel, one value per month of the overview (0 where it sold nothing)."""

    channel_key: str
    channel_name: str
    net_revenue_cents: list[int]
    total_cents: int


@dataclass
class Overview:
    customers: int
    orders: int
    period_orders: int
    net_revenue_cents: int  # within the period
    months: list[date]  # first day of each month, oldest first, in the workspace's calendar
    series: list[ChannelSeries] = field(default_factory=list)
    month_totals_cents: list[int] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    # set when the period was moved back to end at the newest order, because no order is that recent
    data_ends_at: date | None = None
    last_day: date | None = None  # the day the period ends at (today, or the newest order's day)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def get_overview(session: Session, *, actor: Actor, months: int = 12, today: date | None = None) -> Overview:
    """The overview of the actor's workspace over the last `months` calendar months (this one included)."""
    actor.require(Permission.READ)
    if not 1 <= months <= MAX_MONTHS:
        raise ValidationFailed(
            f"{months} months is out of range", where="months", hint=f"choose 1 to {MAX_MONTHS} months"
        )
    workspace = workspaces.get_workspace(session, workspace_id=actor.workspace_id)
    zone = ZoneInfo(workspace.timezone)
    data_ends_at = None
    given_today = today is not None
    if today is None:
        today = utcnow().astimezone(zone).date()
        # a store whose data stops earlier (an archive, the demo brand) shows its last months, saying so
        latest = orders.last_order_at(session, workspace_id=actor.workspace_id)
        if latest is not None and latest.astimezone(zone).date() < _add_months(
            _month_start(today), -(months - 1)
        ):
            today = data_ends_at = latest.astimezone(zone).date()
    first = _add_months(_month_start(today), -(months - 1))
    month_list = [_add_months(first, i) for i in range(months)]
    after_last = _add_months(month_list[-1], 1)
    start = datetime(first.year, first.month, 1, tzinfo=zone)
    end = datetime(after_last.year, after_last.month, 1, tzinfo=zone)
    rows = orders.revenue_by_channel(
        session, workspace_id=actor.workspace_id, start=start, end=end, granularity="month"
    )
    position = {month: i for i, month in enumerate(month_list)}
    by_channel: dict[str, ChannelSeries] = {}
    period_orders = 0
    for row in rows:
        series = by_channel.setdefault(
            row.channel_key, ChannelSeries(row.channel_key, row.channel_name, [0] * months, 0)
        )
        index = position.get(_month_start(row.period))
        if index is None:  # a period at the edge of a daylight-saving shift: count it in the nearest month
            index = 0 if row.period < first else months - 1
        series.net_revenue_cents[index] += row.net_revenue_cents
        series.total_cents += row.net_revenue_cents
        period_orders += row.orders
    ordered = sorted(by_channel.values(), key=lambda s: (-s.total_cents, s.channel_key))
    totals = [sum(s.net_revenue_cents[i] for s in ordered) for i in range(months)]
    return Overview(
        customers=customers.count_customers(session, workspace_id=actor.workspace_id),
        orders=orders.count_orders(session, workspace_id=actor.workspace_id),
        period_orders=period_orders,
        net_revenue_cents=sum(totals),
        months=month_list,
        series=ordered,
        month_totals_cents=totals,
        start=start,
        end=end - timedelta(microseconds=1),
        data_ends_at=data_ends_at,
        last_day=today if given_today or data_ends_at else utcnow().astimezone(zone).date(),
    )


# --- the dashboard: the four metrics, GMV share, channel ROI, cohorts, RFM and lifecycle ---------------


@dataclass(frozen=True)
class MetricCard:
    """One of the four metrics: its latest monthly figure, the month before, and its trend line.

    `value` is the newest month that has a figure (retention needs its 30-day mark to have passed, so
    the current month often has none); `change` is `value − previous` in share points (0.02 = +2 pts).
    """

    key: str  # pass_through, retention, conversion, repurchase
    period: str | None  # the month of `value`, "2026-03"
    value: float | None
    previous: float | None
    change: float | None
    trend: list[float | None]  # one figure per month of `Dashboard.trend_months`, oldest first


@dataclass
class Dashboard:
    overview: Overview
    cards: list[MetricCard]
    trend_months: list[str]  # "2026-03", oldest first
    share: metrics.PrivateDomainShare  # over the overview's period
    roi: list[metrics.ChannelReturn]  # over the overview's period, last-touch attribution
    cohorts: list[metrics.CohortRow]  # monthly, the last COHORT_MONTHS months
    layers: list[rfm.LayerCount]
    layer_money_cents: int  # all layers together, for each layer's share
    stages: dict[str, int]


def _card(key: str, months: list[str], values: list[float | None]) -> MetricCard:
    known = [i for i, value in enumerate(values) if value is not None]
    if not known:
        return MetricCard(key, None, None, None, None, values)
    newest = known[-1]
    value = values[newest]
    previous = values[newest - 1] if newest > 0 else None
    change = None if value is None or previous is None else value - previous
    return MetricCard(key, months[newest], value, previous, change, values)


def get_dashboard(
    session: Session,
    *,
    actor: Actor,
    months: int = 12,
    today: date | None = None,
    now: datetime | None = None,
) -> Dashboard:
    """The overview page's figures over the last `months` calendar months (see `get_overview`): the
    revenue figures, the four metrics per month with their latest change, the private domain's GMV
    share and the channel ROI over the period, monthly retention cohorts, RFM layers and lifecycle
    stages. `now` decides which cohort marks have passed (default: the current time)."""
    figures = get_overview(session, actor=actor, months=months, today=today)
    assert figures.start is not None and figures.end is not None and figures.last_day is not None
    last = figures.last_day
    start, end = figures.start, figures.end + timedelta(microseconds=1)
    points = metrics.trend(
        session, actor=actor, period="month", last=last, points=min(months, MAX_TREND_MONTHS), now=now
    )
    labels = [p.period[:7] for p in points]
    cards = [_card(key, labels, [getattr(p, key) for p in points]) for key in METRIC_KEYS]
    first_cohort = metrics.period_start(metrics.period_of(last, "month") - COHORT_MONTHS + 1, "month")
    layers = rfm.layer_summary(session, actor=actor)
    return Dashboard(
        overview=figures,
        cards=cards,
        trend_months=labels,
        share=metrics.private_domain_share(session, actor=actor, start=start, end=end),
        roi=metrics.channel_roi(session, actor=actor, start=start, end=end),
        cohorts=metrics.cohort_table(
            session,
            actor=actor,
            period="month",
            first=first_cohort,
            last=last,
            horizon=COHORT_MONTHS,
            now=now,
        ),
        layers=layers,
        layer_money_cents=sum(layer.monetary_cents for layer in layers),
        stages=lifecycle.stage_counts(session, actor=actor),
    )
