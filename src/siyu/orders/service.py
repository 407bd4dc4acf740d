"""Order reads: lists with cursors, one order with its lines, a customer's orders, revenue by channel.

Writing orders is the loader's job (`siyu.ingest`); this module only reads, always within one workspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Select, case, cast, func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.channels import service as channels
from siyu.core.db import is_postgres
from siyu.core.errors import NotFound, ValidationFailed
from siyu.customers import service as customers
from siyu.customers.schemas import TimelineItem
from siyu.orders.models import PURCHASE_STATUSES, REVENUE_STATUSES, Order, OrderLine
from siyu.orders.schemas import Granularity, OrderLineOut, OrderOut, OrderPage, RevenueRow
from siyu.workspaces import service as workspaces

_ORDER_COLUMNS = [name for name in OrderOut.model_fields if name != "lines"]


def _with_lines(session: Session, orders: Sequence[Order]) -> list[OrderOut]:
    """Orders as OrderOut with their lines, in one query for all lines."""
    if not orders:
        return []
    lines: dict[int, list[OrderLineOut]] = {o.id: [] for o in orders}
    for line in session.scalars(
        select(OrderLine).where(OrderLine.order_id.in_(lines)).order_by(OrderLine.order_id, OrderLine.line_no)
    ):
        lines[line.order_id].append(OrderLineOut.model_validate(line))
    return [
        OrderOut.model_validate({**{c: getattr(o, c) for c in _ORDER_COLUMNS}, "lines": lines[o.id]})
        for o in orders
    ]


def _visible_orders(actor: Actor) -> Select[tuple[Order]]:
    stmt = select(Order).where(Order.workspace_id == actor.workspace_id)
    if actor.sees_only_own_customers:
        stmt = stmt.where(Order.customer_id.in_(customers.visible_customers(actor)))
    return stmt


def list_orders(
    session: Session,
    *,
    actor: Actor,
    customer_id: int | None = None,
    channel_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> OrderPage:
    """Orders newest first (by placed time), filtered, one page at a time; `end` is exclusive."""
    actor.require(Permission.READ)
    limit = customers.clamp_limit(limit)
    stmt = _visible_orders(actor)
    if customer_id is not None:
        customers.ensure_visible(session, actor=actor, customer_id=customer_id)
        stmt = stmt.where(Order.customer_id == customer_id)
    if channel_id is not None:
        stmt = stmt.where(Order.channel_id == channel_id)
    if start is not None:
        stmt = stmt.where(Order.placed_at >= start)
    if end is not None:
        stmt = stmt.where(Order.placed_at < end)
    if cursor:
        placed_at, order_id = customers.decode_time_id_cursor(cursor)
        stmt = stmt.where(customers.keyset_before(Order.placed_at, Order.id, placed_at, order_id))
    rows = list(session.scalars(stmt.order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    next_cursor = customers.encode_cursor(page[-1].placed_at, page[-1].id) if len(rows) > limit else None
    return OrderPage(items=_with_lines(session, page), next_cursor=next_cursor)


def get_order(session: Session, *, actor: Actor, order_id: int) -> OrderOut:
    """One order with its lines, or NotFound (also for staff when the customer is not theirs)."""
    actor.require(Permission.READ)
    order = session.scalar(_visible_orders(actor).where(Order.id == order_id))
    if order is None:
        raise NotFound(f"order {order_id} does not exist in this workspace", where="order_id")
    return _with_lines(session, [order])[0]


def get_order_by_external_id(session: Session, *, actor: Actor, external_id: str) -> OrderOut:
    actor.require(Permission.READ)
    order = session.scalar(_visible_orders(actor).where(Order.external_id == external_id))
    if order is None:
        raise NotFound(f"order {external_id!r} does not exist in this workspace", where="external_id")
    return _with_lines(session, [order])[0]


def customer_orders(
    session: Session, *, workspace_id: int, customer_id: int, limit: int | None = 10
) -> list[OrderOut]:
    """A customer's orders with lines, newest first (all of them when `limit` is None).

    The caller has checked that the customer may be seen.
    """
    stmt = (
        select(Order)
        .where(Order.workspace_id == workspace_id, Order.customer_id == customer_id)
        .order_by(Order.placed_at.desc(), Order.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return _with_lines(session, list(session.scalars(stmt)))


def timeline_orders(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    before: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[TimelineItem]:
    """A customer's orders as timeline entries, newest first, after a keyset bound."""
    stmt = select(Order).where(Order.workspace_id == workspace_id, Order.customer_id == customer_id)
    if before is not None:
        stmt = stmt.where(customers.keyset_before(Order.placed_at, Order.id, before, before_id))
    rows = session.scalars(stmt.order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit))
    return [
        TimelineItem(
            kind="order",
            id=o.id,
            occurred_at=o.placed_at,
            title=o.status,
            detail={
                "external_id": o.external_id,
                "paid_cents": o.paid_cents,
                "refunded_cents": o.refunded_cents,
                "currency": o.currency,
                "channel_id": o.channel_id,
                "store_id": o.store_id,
            },
        )
        for o in rows
    ]


def count_orders(session: Session, *, workspace_id: int) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Order).where(Order.workspace_id == workspace_id)) or 0
    )


def last_order_at(session: Session, *, workspace_id: int) -> datetime | None:
    """When the workspace's newest order was placed (None without orders)."""
    return session.scalar(select(func.max(Order.placed_at)).where(Order.workspace_id == workspace_id))


def _utc_offset_minutes(zone: str, at: datetime) -> int:
    offset = at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def revenue_by_channel(
    session: Session, *, workspace_id: int, start: datetime, end: datetime, granularity: Granularity
) -> list[RevenueRow]:
    """Net revenue (paid − refunded) and purchase count per channel and period, computed in SQL.

    Periods are days, ISO weeks (starting Monday) or months of the workspace's calendar, over orders
    placed in [start, end). On SQLite the zone's UTC offset at `start` is used for the whole range
    (exact for zones without daylight saving time, such as Asia/Shanghai).
    """
    if granularity not in ("day", "week", "month"):
        raise ValidationFailed(
            f"unknown granularity {granularity!r}", where="granularity", hint="day, week or month"
        )
    if end <= start:
        raise ValidationFailed("the range ends before it starts", where="end")
    zone = workspaces.get_workspace(session, workspace_id=workspace_id).timezone
    period: Any
    if is_postgres(session):
        period = cast(func.date_trunc(granularity, func.timezone(zone, Order.placed_at)), Date)
    else:
        shift = f"{_utc_offset_minutes(zone, start):+d} minutes"
        if granularity == "day":
            period = func.date(Order.placed_at, shift)
        elif granularity == "week":
            # 'weekday 0' moves to the next Sunday (or stays on one); six days back is that week's Monday
            period = func.date(Order.placed_at, shift, "weekday 0", "-6 days")
        else:
            period = func.date(Order.placed_at, shift, "start of month")
    period = period.label("period")
    net = func.sum(
        case((Order.status.in_(REVENUE_STATUSES), Order.paid_cents - Order.refunded_cents), else_=0)
    ).label("net")
    purchases = func.sum(case((Order.status.in_(PURCHASE_STATUSES), 1), else_=0)).label("purchases")
    rows = session.execute(
        select(period, Order.channel_id, net, purchases)
        .where(Order.workspace_id == workspace_id, Order.placed_at >= start, Order.placed_at < end)
        # grouped by the label: the period expression carries bound parameters, which PostgreSQL would
        # see as a different expression in GROUP BY than in the select list
        .group_by("period", Order.channel_id)
        .order_by("period", Order.channel_id)
    ).all()
    names = channels.channel_names(session, workspace_id=workspace_id)
    result = []
    for period_value, channel_id, net_cents, count in rows:
        key, name = names.get(channel_id, ("", "")) if channel_id is not None else ("", "")
        result.append(
            RevenueRow(
                period=period_value
                if isinstance(period_value, date)
                else date.fromisoformat(str(period_value)),
                channel_id=channel_id,
                channel_key=key or "(none)",
                channel_name=name or "(none)",
                net_revenue_cents=int(net_cents or 0),
                orders=int(count or 0),
            )
        )
    return result


def order_ids_of_customer(session: Session, *, workspace_id: int, customer_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Order.id).where(Order.workspace_id == workspace_id, Order.customer_id == customer_id)
        )
    )


def order_measure_by_customer(
    workspace_id: int,
    *,
    measure: str,
    category: str | None = None,
    channel_id: int | None = None,
    store_id: int | None = None,
    placed_after: datetime | None = None,
    placed_until: datetime | None = None,
) -> Select[tuple[int | None, int]]:
    """Per customer with at least one matching purchase: (customer_id, value), for segment rules.

    Purchases are orders in a purchase status (paid, partially refunded), placed in
    (placed_after, placed_until]. `measure` "count" counts them; "sum" adds their net paid cents (paid
    less refunded) — or, with a `category`, the amounts of their lines in that category. With a category,
    an order matches when one of its lines is in it. Customers without a matching purchase have no row.
    """
    conditions = [
        Order.workspace_id == workspace_id,
        Order.customer_id.is_not(None),
        Order.status.in_([s.value for s in PURCHASE_STATUSES]),
    ]
    if channel_id is not None:
        conditions.append(Order.channel_id == channel_id)
    if store_id is not None:
        conditions.append(Order.store_id == store_id)
    if placed_after is not None:
        conditions.append(Order.placed_at > placed_after)
    if placed_until is not None:
        conditions.append(Order.placed_at <= placed_until)
    if category is None:
        value = (
            func.count(Order.id) if measure == "count" else func.sum(Order.paid_cents - Order.refunded_cents)
        )
        return select(Order.customer_id, value.label("value")).where(*conditions).group_by(Order.customer_id)
    in_category = select(OrderLine.order_id).where(
        OrderLine.order_id == Order.id, OrderLine.category == category
    )
    if measure == "count":
        return (
            select(Order.customer_id, func.count(Order.id).label("value"))
            .where(*conditions, in_category.exists())
            .group_by(Order.customer_id)
        )
    return (
        select(Order.customer_id, func.sum(OrderLine.amount_cents).label("value"))
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(*conditions, OrderLine.category == category)
        .group_by(Order.customer_id)
    )


def purchases(
    *,
    workspace_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    channel_id: int | None = None,
    store_id: int | None = None,
) -> Select[Any]:
    """A selectable of the purchases placed in [start, end) — paid or partially refunded orders of a
    customer, as the rollups count them — with `order_id`, `customer_id`, `placed_at`, `net_cents`
    (paid − refunded) and `channel_id`, for the analytical domains to aggregate in SQL."""
    conditions = [
        Order.workspace_id == workspace_id,
        Order.customer_id.is_not(None),
        Order.status.in_(PURCHASE_STATUSES),
    ]
    if start is not None:
        conditions.append(Order.placed_at >= start)
    if end is not None:
        conditions.append(Order.placed_at < end)
    if channel_id is not None:
        conditions.append(Order.channel_id == channel_id)
    if store_id is not None:
        conditions.append(Order.store_id == store_id)
    return select(
        Order.id.label("order_id"),
        Order.customer_id.label("customer_id"),
        Order.placed_at.label("placed_at"),
        (Order.paid_cents - Order.refunded_cents).label("net_cents"),
        Order.channel_id.label("channel_id"),
    ).where(*conditions)


def daily_purchases(session: Session, *, workspace_id: int, until: datetime) -> Select[Any]:
    """Per customer and day of the workspace's calendar, the purchases placed before `until`, summed:
    (`customer_id`, `day`, `net_cents`) — the transaction log of the purchase models, same-day purchases
    merged in SQL. On SQLite the zone's UTC offset at `until` stands for the whole range."""
    zone = workspaces.get_workspace(session, workspace_id=workspace_id).timezone
    if is_postgres(session):
        day: Any = cast(func.timezone(zone, Order.placed_at), Date)
    else:
        day = func.date(Order.placed_at, f"{_utc_offset_minutes(zone, until):+d} minutes")
    return (
        select(
            Order.customer_id.label("customer_id"),
            day.label("day"),
            func.sum(Order.paid_cents - Order.refunded_cents).label("net_cents"),
        )
        .where(
            Order.workspace_id == workspace_id,
            Order.customer_id.is_not(None),
            Order.status.in_(PURCHASE_STATUSES),
            Order.placed_at < until,
        )
        # grouped by the label: the day expression carries bound parameters (see revenue_by_channel)
        .group_by(Order.customer_id, "day")
    )


def line_amounts_by_category(session: Session, *, workspace_id: int, order_id: int) -> dict[str, int]:
    """An order's line amounts summed per category ("" for lines without one), for commission rules."""
    rows = session.execute(
        select(OrderLine.category, func.sum(OrderLine.amount_cents))
        .where(OrderLine.workspace_id == workspace_id, OrderLine.order_id == order_id)
        .group_by(OrderLine.category)
    )
    return {str(category or ""): int(total or 0) for category, total in rows}
