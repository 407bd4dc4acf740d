"""The outbox of reach: one row per decided message, the workspace's reach policy, per-customer contact
state (do-not-contact, and the row caps are decided under), blocked addresses and rate buckets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class MessageStatus(StrEnum):
    QUEUED = "queued"  # waiting for a worker (a retry waits here too, with its next due time)
    DEFERRED = "deferred"  # decided inside quiet hours: sent when due, never dropped
    SENT = "sent"  # the provider accepted it (provider message id kept)
    DELIVERED = "delivered"  # the provider reported delivery
    FAILED = "failed"  # a permanent failure, or retries exhausted: a dead letter
    SUPPRESSED = "suppressed"  # the gateway decided not to send (reason kept)
    HELD = "held"  # its source paused it (a paused broadcast): kept with its due time until released


# statuses of messages that reach, or will reach, the customer: these count against caps
COUNTED_STATUSES = (
    MessageStatus.QUEUED,
    MessageStatus.DEFERRED,
    MessageStatus.HELD,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
)
PENDING_STATUSES = (MessageStatus.QUEUED, MessageStatus.DEFERRED)


class Reason(StrEnum):
    """Why a message was suppressed (docs/reach.md explains each)."""

    CUSTOMER_GONE = "customer_gone"
    DO_NOT_CONTACT = "do_not_contact"
    DUPLICATE = "duplicate"
    BUDGET = "budget_exceeded"
    NO_CONTENT = "no_content"
    NO_ADDRESS = "no_address"
    ADDRESS_BLOCKED = "address_blocked"
    NO_CONSENT = "no_consent"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NOT_WECOM_FRIEND = "not_wecom_friend"
    CHANNEL_CAP = "channel_cap"
    PLATFORM_CAP = "platform_cap"
    RENDER_FAILED = "render_failed"  # personalised content could not be rendered for this customer
    CANCELLED = "cancelled"  # its source was cancelled before the message left


class ReachMessage(Base):
    """One decision of the gateway about one message to one customer, and what became of it."""

    __tablename__ = "reach_message"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_reach_message_due", "status", "due_at"),
        Index("ix_reach_message_ws_customer_planned", "workspace_id", "customer_id", "planned_at"),
        Index("ix_reach_message_ws_source", "workspace_id", "source", "source_ref"),
        Index("ix_reach_message_ws_status_id", "workspace_id", "status", "id"),
        Index("ix_reach_message_provider_id", "workspace_id", "provider_message_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # no foreign keys: a broadcast writes one row per customer (the reasoning of docs/architecture.md)
    workspace_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[int] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(16))  # broadcast | journey | staff | api
    source_ref: Mapped[str] = mapped_column(String(128))
    step: Mapped[str] = mapped_column(String(128), default="")
    idempotency_key: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(320))
    content: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it reaches the customer (caps)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when a worker may take it next
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReachPolicy(Base):
    """A workspace's rules of reach; the defaults apply while it has none."""

    __tablename__ = "reach_policy"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    marketing_budget: Mapped[int] = mapped_column(Integer, default=2)  # marketing messages per customer …
    budget_days: Mapped[int] = mapped_column(Integer, default=7)  # … in any window of this many days
    channel_caps: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # channel → {count, days}
    wecom_cap: Mapped[str] = mapped_column(String(8), default="month")  # month | week | day
    # no column defaults: None means "no quiet hours" (the defaults live in `service.policy.Policy`)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    dedup_hours: Mapped[int] = mapped_column(Integer, default=24)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    rate_limits: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # channel → per second
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReachContact(Base):
    """Per-customer state of reach; decisions for one customer are taken holding this row's lock."""

    __tablename__ = "reach_contact"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BlockedAddress(Base):
    """An address a channel must not use any more (an email that bounced hard)."""

    __tablename__ = "reach_blocked_address"
    __table_args__ = (UniqueConstraint("workspace_id", "channel", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateBucket(Base):
    """A token bucket per workspace and channel, shared by every worker (per-provider rate limits)."""

    __tablename__ = "reach_rate_bucket"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    refilled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
