"""Pydantic shapes of orders and the revenue report, returned by the orders service and the JSON API.

Amounts are integer cents; times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

Granularity = Literal["day", "week", "month"]


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    line_no: int
    sku: str
    name: str
    category: str
    quantity: int
    unit_price_cents: int
    amount_cents: int


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str
    customer_id: int | None
    channel_id: int | None
    store_id: int | None
    status: str
    currency: str
    total_cents: int
    discount_cents: int
    paid_cents: int
    refunded_cents: int
    placed_at: datetime
    updated_at: datetime
    source: str
    lines: list[OrderLineOut] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def net_cents(self) -> int:
        """What the order brought in: paid minus refunded."""
        return self.paid_cents - self.refunded_cents


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = None


class RevenueRow(BaseModel):
    """Net revenue (paid minus refunded) of one channel in one period of the workspace's calendar."""

    period: date
    channel_id: int | None
    channel_key: str
    channel_name: str
    net_revenue_cents: int
    orders: int
