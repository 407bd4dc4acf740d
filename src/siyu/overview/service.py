"""The overview figures: customers, orders, net revenue, and net revenue by channel per month.

Read only; built from the customers and orders services (the revenue itself is grouped in SQL there).
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
from siyu.orders import service as orders
from siyu.workspaces import service as workspaces

MAX_MONTHS = 36


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
    )
