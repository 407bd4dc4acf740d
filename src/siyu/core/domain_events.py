"""Domain events: every change to a customer is recorded as a typed event in the same transaction.

The segment and journey engines consume them in order of `id` (an outbox), each keeping its place in
`domain_event_cursor`. Types are dotted names (`customer.created`, `order.placed`, `identity.merged`, …).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class DomainEventType(StrEnum):
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_ERASED = "customer.erased"
    IDENTITY_ADDED = "identity.added"
    IDENTITY_MERGED = "identity.merged"
    IDENTITY_UNMERGED = "identity.unmerged"
    IDENTITY_CONFLICT = "identity.conflict_flagged"
    ORDER_PLACED = "order.placed"
    ORDER_UPDATED = "order.updated"
    ORDER_REFUNDED = "order.refunded"
    EVENT_RECORDED = "event.recorded"
    CONSENT_CHANGED = "consent.changed"
    OWNER_CHANGED = "customer.owner_changed"
    TAG_ADDED = "tag.added"
    TAG_REMOVED = "tag.removed"
    SEGMENT_CREATED = "segment.created"
    SEGMENT_UPDATED = "segment.updated"
    SEGMENT_DELETED = "segment.deleted"
    SEGMENT_ENTERED = "segment.entered"
    SEGMENT_LEFT = "segment.left"
    RFM_COMPUTED = "rfm.computed"
    CLV_SCORED = "clv.scored"
    LIFECYCLE_CHANGED = "lifecycle.changed"
    EXPERIMENT_CREATED = "experiment.created"
    EXPERIMENT_STARTED = "experiment.started"
    EXPERIMENT_STOPPED = "experiment.stopped"
    EXPERIMENT_EXPOSED = "experiment.exposed"
    WECOM_FRIEND_ADDED = "wecom.friend_added"
    WECOM_FRIEND_DELETED = "wecom.friend_deleted"  # the staff member deleted the customer
    WECOM_STAFF_DELETED = "wecom.staff_deleted"  # the customer deleted the staff member: churn alert
    COUPON_ISSUED = "coupon.issued"
    COUPON_REDEEMED = "coupon.redeemed"
    COUPON_REDEMPTION_REVERSED = "coupon.redemption_reversed"
    POINTS_CHANGED = "points.changed"
    TIER_CHANGED = "tier.changed"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_FAILED = "message.failed"
    REACH_DO_NOT_CONTACT = "reach.do_not_contact_changed"
    LIVECODE_CREATED = "livecode.created"
    LIVECODE_ADDED = "livecode.added"
    LIVECODE_DELETED = "livecode.deleted"


class DomainEvent(Base):
    __tablename__ = "domain_event"
    __table_args__ = (Index("ix_domain_event_ws_id", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # no foreign key: an outbox row per order would cost a key check per row on bulk loads (docs/architecture.md)
    workspace_id: Mapped[int] = mapped_column(BigId)
    type: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(BigId, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def record(
    session: Session,
    *,
    workspace_id: int,
    type: DomainEventType | str,
    customer_id: int | None,
    payload: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """Add one domain event to the caller's transaction."""
    now = utcnow()
    session.add(
        DomainEvent(
            workspace_id=workspace_id,
            type=str(type),
            customer_id=customer_id,
            payload=payload or {},
            occurred_at=occurred_at or now,
            created_at=now,
        )
    )


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Bulk-add domain events (dicts with workspace_id, type, customer_id, payload, occurred_at)."""
    now = utcnow()
    batch = [
        {
            "workspace_id": r["workspace_id"],
            "type": str(r["type"]),
            "customer_id": r.get("customer_id"),
            "payload": r.get("payload") or {},
            "occurred_at": r.get("occurred_at") or now,
            "created_at": now,
        }
        for r in rows
    ]
    if batch:
        session.execute(insert(DomainEvent), batch)
    return len(batch)


class DomainEventCursor(Base):
    """How far one consumer of the outbox has read, per workspace: the id of the last event it handled.

    A consumer advances its cursor in the same transaction as the work the events caused, so a crash
    replays events instead of losing them.
    """

    __tablename__ = "domain_event_cursor"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def claim_cursor(session: Session, *, consumer: str, workspace_id: int) -> int:
    """The id of the last event `consumer` handled in the workspace (0 at first), with the cursor row
    locked until the caller's transaction ends: a second run of the same consumer waits here instead of
    handling the same events again (PostgreSQL: `FOR UPDATE`; SQLite: the write lock of BEGIN IMMEDIATE).
    """
    row = {"consumer": consumer, "workspace_id": workspace_id, "last_event_id": 0, "updated_at": utcnow()}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(DomainEventCursor).values(row).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(DomainEventCursor).values(row).on_conflict_do_nothing())
    last = session.scalar(
        select(DomainEventCursor.last_event_id)
        .where(DomainEventCursor.consumer == consumer, DomainEventCursor.workspace_id == workspace_id)
        .with_for_update()
    )
    return int(last or 0)


def advance_cursor(session: Session, *, consumer: str, workspace_id: int, last_event_id: int) -> None:
    """Move a claimed cursor to `last_event_id` (in the caller's transaction)."""
    session.execute(
        update(DomainEventCursor)
        .where(DomainEventCursor.consumer == consumer, DomainEventCursor.workspace_id == workspace_id)
        .values(last_event_id=last_event_id, updated_at=utcnow())
    )


def cursor_position(session: Session, *, consumer: str, workspace_id: int) -> tuple[int, datetime | None]:
    """Where a consumer stands, without locking: (last event id, when it last moved)."""
    found = session.execute(
        select(DomainEventCursor.last_event_id, DomainEventCursor.updated_at).where(
            DomainEventCursor.consumer == consumer, DomainEventCursor.workspace_id == workspace_id
        )
    ).first()
    return (int(found[0]), found[1]) if found else (0, None)
