"""Domain events: every change to a customer is recorded as a typed event in the same transaction.

The segment and journey engines consume them in order of `id` (an outbox). Types are dotted names
(`customer.created`, `order.placed`, `order.refunded`, `identity.merged`, `consent.changed`, …).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, insert
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
    EXPERIMENT_CREATED = "experiment.created"
    EXPERIMENT_STARTED = "experiment.started"
    EXPERIMENT_STOPPED = "experiment.stopped"
    EXPERIMENT_EXPOSED = "experiment.exposed"
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
