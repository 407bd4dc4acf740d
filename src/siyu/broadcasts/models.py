"""Broadcasts (群发) and the snapshot of their audience: which customers, in which variant (or the
holdout), and whether the gateway has decided their message yet."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class BroadcastStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # waiting for send_at (a timer row: the worker starts it when due)
    SENDING = "sending"  # audience snapshot taken; decisions and deliveries under way
    SENT = "sent"  # every recipient decided and no message of it is waiting any more
    PAUSED = "paused"  # no decision is taken and no message of it leaves until resumed
    CANCELLED = "cancelled"  # what had not left never will


class RecipientOutcome(StrEnum):
    PENDING = "pending"  # in the snapshot, not decided by the gateway yet
    DECIDED = "decided"  # the gateway holds one message row for the customer (reach accounting)
    HOLDOUT = "holdout"  # in the experiment's holdout: no message, on purpose
    CANCELLED = "cancelled"  # the broadcast was cancelled before the customer was decided


class Broadcast(Base):
    """One broadcast: its audience (a segment, or an explicit list of customers), what it sends on which
    channels (in order of preference), its variants, its schedule and where it stands."""

    __tablename__ = "broadcast"
    __table_args__ = (
        Index("ix_broadcast_ws_created", "workspace_id", "created_at"),
        Index("ix_broadcast_status_send_at", "status", "send_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segment.id", ondelete="SET NULL"))
    # an explicit audience: customer ids resolved when the broadcast was created
    customer_ids: Mapped[list[int]] = mapped_column(JsonDoc, default=list)
    channel_preference: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    content: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # channel → content
    # variant name → its content (empty: every recipient gets `content`); weights live in the experiment
    variants: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    holdout_share: Mapped[float] = mapped_column(Float, default=0.0)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiment.id", ondelete="SET NULL"))
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    conversion_window_days: Mapped[int] = mapped_column(Integer, default=7)
    # a coupon of this template issued to each customer the broadcast decides (in the content as coupon_code)
    coupon_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("coupon_template.id", ondelete="SET NULL")
    )
    audience_size: Mapped[int] = mapped_column(Integer, default=0)
    decided_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BroadcastRecipient(Base):
    """One customer of a broadcast's audience snapshot, with the variant they were assigned."""

    __tablename__ = "broadcast_recipient"
    __table_args__ = (Index("ix_broadcast_recipient_outcome", "broadcast_id", "outcome", "customer_id"),)

    # no foreign keys: a broadcast writes one row per customer (the reasoning of docs/architecture.md)
    broadcast_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(BigId)
    variant: Mapped[str] = mapped_column(String(64), default="")  # "" without variants; "holdout"
    outcome: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
