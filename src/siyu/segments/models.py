"""Saved segments: a named rule (its canonical JSON and its text form); deleted ones are kept, marked.
Their live membership: who is in each segment now, and since when, with the history of who left."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class Segment(Base):
    """A named rule. Deleting keeps the row (and its name): rules that name it then fail saying it was
    deleted, instead of silently matching no one or another segment given the same name later.

    The rule's `version` counts its changes; membership rows and segment.entered/left events carry the
    version that decided them. `evaluated_at` is the last full evaluation (backfill, sweep or repair),
    `swept_at` the last time sweep, `reconciled_at` / `drift_*` the last reconciliation and what it
    found; `evaluation_error` says why the rule stopped evaluating (e.g. it names a deleted segment).
    """

    __tablename__ = "segment"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    rule: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    rule_text: Mapped[str] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # a rule tag: members carry this tag (source "rule") while they are members
    tag_id: Mapped[int | None] = mapped_column(ForeignKey("tag.id", ondelete="SET NULL"))
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    swept_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    drift_missing: Mapped[int | None] = mapped_column(Integer)
    drift_extra: Mapped[int | None] = mapped_column(Integer)
    evaluation_error: Mapped[str | None] = mapped_column(Text)


class SegmentMembership(Base):
    """One stay of a customer in a segment: entered at, left at (NULL while still a member).

    At most one open stay per segment and customer (a partial unique index), so a change applied twice
    cannot make anyone a member twice. Members over time are read from these stays, without a job.
    """

    __tablename__ = "segment_membership"
    __table_args__ = (
        Index(
            "uq_segment_membership_open",
            "segment_id",
            "customer_id",
            unique=True,
            sqlite_where=text("left_at IS NULL"),
            postgresql_where=text("left_at IS NULL"),
        ),
        Index("ix_segment_membership_entered", "segment_id", "entered_at"),
        Index("ix_segment_membership_left", "segment_id", "left_at"),
        Index("ix_segment_membership_customer", "workspace_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # no foreign keys to workspace or customer: a backfill writes one row per member (docs/architecture.md)
    workspace_id: Mapped[int] = mapped_column(BigId)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segment.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entered_version: Mapped[int] = mapped_column(Integer)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_version: Mapped[int | None] = mapped_column(Integer)
