"""The one filter every metric takes (date range aside): channel, staff (owner), store and segment,
turned into SQL conditions over the customers and orders a metric counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from siyu.customers.service import facts as customer_facts
from siyu.orders import service as orders
from siyu.segments import service as segments


@dataclass(frozen=True)
class MetricFilter:
    """Who a metric counts. Each field narrows; none set: everyone.

    - `channel_id`: an order's channel for the order-based metrics (repurchase, the private domain's
      share); the customer's first channel for the customer-based ones (pass-through, retention,
      conversion, reactivation).
    - `owner_user_id`: customers assigned to that staff member.
    - `store_id`: orders placed at that store for the order-based metrics; customers with a purchase at
      that store (at any time) for the customer-based ones.
    - `segment_id`: the segment's current members.
    """

    channel_id: int | None = None
    owner_user_id: int | None = None
    store_id: int | None = None
    segment_id: int | None = None

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in (self.channel_id, self.owner_user_id, self.store_id, self.segment_id))


NO_FILTER = MetricFilter()


def customers_matching(
    *, workspace_id: int, filters: MetricFilter, order_based: bool = False
) -> Select[Any] | None:
    """The `customer_id`s a filter allows, or None when it allows every customer. With `order_based`,
    channel and store are left to the orders (the caller filters its orders by them)."""
    dims = customer_facts.dimensions(workspace_id=workspace_id).subquery()
    conditions: list[ColumnElement[bool]] = []
    if filters.channel_id is not None and not order_based:
        conditions.append(dims.c.channel_id == filters.channel_id)
    if filters.owner_user_id is not None:
        conditions.append(dims.c.owner_user_id == filters.owner_user_id)
    if filters.store_id is not None and not order_based:
        at_store = orders.purchases(workspace_id=workspace_id, store_id=filters.store_id).subquery()
        conditions.append(dims.c.customer_id.in_(select(at_store.c.customer_id)))
    if filters.segment_id is not None:
        members = segments.current_members(workspace_id=workspace_id, segment_id=filters.segment_id)
        conditions.append(dims.c.customer_id.in_(members))
    if not conditions:
        return None
    return select(dims.c.customer_id).where(*conditions)


def customer_condition(
    column: Any, *, workspace_id: int, filters: MetricFilter | None, order_based: bool = False
) -> list[ColumnElement[bool]]:
    """`column IN (the customers the filter allows)`, or nothing when it allows everyone."""
    if filters is None:
        return []
    allowed = customers_matching(workspace_id=workspace_id, filters=filters, order_based=order_based)
    return [] if allowed is None else [column.in_(allowed)]
