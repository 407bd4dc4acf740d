"""Orders (keyed by external id per workspace) and order lines."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, UTCDateTime
from siyu.core.timeutil import utcnow


class OrderStatus(StrEnum):
    PENDING = "pending"  # placed, not paid: does not count as a purchase
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"  # never paid: does not count


# statuses whose orders count as purchases in rollups (a fully refunded order still happened,
# but brings no revenue; it does not count as a purchase)
PURCHASE_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)
REVENUE_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)


class Order(Base):
    __tablename__ = "customer_order"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_id"),
        Index("ix_customer_order_customer_placed", "customer_id", "placed_at"),
        Index("ix_customer_order_ws_placed", "workspace_id", "placed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys on this table and on `order_line`: on a bulk load they cost one lookup per row and
    # key (PostgreSQL checks each in a trigger), most of the load's time. The loader is their only bulk
    # writer and takes every id from the same transaction; no path deletes workspaces, customers,
    # channels, stores or orders (see docs/architecture.md, "Store").
    workspace_id: Mapped[int] = mapped_column(BigId)
    external_id: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[int | None] = mapped_column(BigId)
    channel_id: Mapped[int | None] = mapped_column(BigId)
    store_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # list price total before discounts
    discount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # what the customer paid
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(32), default="import")


class OrderLine(Base):
    __tablename__ = "order_line"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # lines are only ever read by order; `workspace_id` is carried for isolation checks, not indexed
    workspace_id: Mapped[int] = mapped_column(BigId)
    order_id: Mapped[int] = mapped_column(BigId, index=True)
    line_no: Mapped[int] = mapped_column(Integer, default=1)
    sku: Mapped[str] = mapped_column(String(100), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(100), default="")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
