"""Domain events: every change to a customer is recorded as a typed event in the same transaction.

The segment and journey engines, points, coupon refunds and referrals consume them in commit order (an
outbox, `read_after` / `advance`), each keeping its place in `domain_event_cursor`. Types are dotted
names (`customer.created`, `order.placed` …).

Commit order: on PostgreSQL an event's `id` comes from a sequence when the row is inserted, not when its
transaction commits, so a long transaction's id 100 can become visible after a short one's 101. Every
event therefore carries the id of the transaction that wrote it (`tx_id`, the column's server default
`pg_current_xact_id()`, so that COPY and executemany get it too), and a consumer reads by (tx_id, id)
only below the oldest transaction of the database still running (the snapshot's xmin, counting this
database's transactions only): every transaction below it has ended, so nothing can appear there later,
and the cursor never passes an event that is yet to commit. SQLite has one writer at a time, so id
order is commit order there; `tx_id` is 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FetchedValue,
    Index,
    Row,
    String,
    and_,
    func,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from siyu.core import bulk
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
    __table_args__ = (
        Index("ix_domain_event_ws_id", "workspace_id", "id"),
        Index("ix_domain_event_ws_tx_id", "workspace_id", "tx_id", "id"),  # what `read_after` reads
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # the writing transaction's id: PostgreSQL `pg_current_xact_id()` (set by the migration, so that every
    # insert path gets it, COPY included); 0 on SQLite and on the events written before the column existed
    tx_id: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
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
    """Bulk-add domain events (dicts with workspace_id, type, customer_id, payload, occurred_at), as one
    set-based insert (COPY on PostgreSQL): an import records one per customer it changes."""
    now = utcnow()
    columns: dict[str, list[Any]] = {
        "workspace_id": [],
        "type": [],
        "customer_id": [],
        "payload": [],
        "occurred_at": [],
    }
    for r in rows:
        columns["workspace_id"].append(r["workspace_id"])
        columns["type"].append(str(r["type"]))
        columns["customer_id"].append(r.get("customer_id"))
        columns["payload"].append(json.dumps(r.get("payload") or {}))
        columns["occurred_at"].append(r.get("occurred_at") or now)
    count = len(columns["type"])
    if count:
        session.flush()  # rows the caller added through the ORM first, as an ORM insert would
        bulk.insert_frame(
            session,
            "domain_event",
            pl.DataFrame(
                columns,
                schema={
                    "workspace_id": pl.Int64,
                    "type": pl.Utf8,
                    "customer_id": pl.Int64,
                    "payload": pl.Utf8,
                    "occurred_at": pl.Datetime("us", "UTC"),
                },
            ).with_columns(pl.lit(now, pl.Datetime("us", "UTC")).alias("created_at")),
        )
    return count


class DomainEventCursor(Base):
    """How far one consumer of the outbox has read, per workspace: the (transaction id, event id) of the
    last event it handled.

    A consumer advances its cursor in the same transaction as the work the events caused, so a crash
    replays events instead of losing them.
    """

    __tablename__ = "domain_event_cursor"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigId, default=0)
    last_tx_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True, order=True)
class Position:
    """A place in the outbox in commit order: the writing transaction's id, then the event's id."""

    tx_id: int = 0
    event_id: int = 0


START = Position()


@dataclass
class Batch:
    """What `read_after` read: the events in commit order, where the consumer stood before them
    (`start`), where it stands after them (`position`), the horizon it read below (PostgreSQL: the
    oldest transaction still running; None on SQLite), and with `count` how many committed events
    were waiting after `start` in all (`pending`)."""

    events: list[Row[Any]]
    start: Position
    position: Position
    horizon: int | None
    pending: int = 0
    types: set[str] = field(default_factory=set)


_XID32 = 1 << 32


def _horizon(session: Session) -> int | None:
    """PostgreSQL: the oldest transaction of this database still running, or the next transaction id
    when none is (every lower one of this database has ended); None on SQLite, whose single writer
    commits in id order.

    `pg_snapshot_xmin` alone would count the transactions of every database of the server, so a long
    transaction elsewhere would hold the consumers back. The snapshot is taken first; the backends of
    this database are read after it, so a transaction in the snapshot that is still running is among
    them (one that ended in between has committed or rolled back, and the next statement sees it).
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    snapshot, own = session.execute(
        text("SELECT pg_current_snapshot()::text, pg_current_xact_id_if_assigned()::text")
    ).one()
    _, xmax, xip = str(snapshot).split(":")
    candidates = [int(xmax)] + ([int(own)] if own is not None else [])
    running = [int(x) for x in xip.split(",") if x]
    if running:
        session.execute(text("SELECT pg_stat_clear_snapshot()"))  # read the backends now, not earlier
        ours = set(
            session.scalars(
                text(
                    "SELECT backend_xid::text::bigint FROM pg_stat_activity"
                    " WHERE datname = current_database() AND backend_xid IS NOT NULL"
                    " UNION ALL SELECT transaction::text::bigint FROM pg_prepared_xacts"
                    " WHERE database = current_database()"
                )
            )
        )
        candidates += [x for x in running if x % _XID32 in ours]
    return min(candidates)


def committed_after(workspace_id: int, after: Position, horizon: int | None) -> ColumnElement[bool]:
    """The condition for the workspace's events after `after` whose transactions have ended below
    `horizon` (for a consumer's own counts and aggregates over what `read_after` would read)."""
    condition = and_(
        DomainEvent.workspace_id == workspace_id,
        tuple_(DomainEvent.tx_id, DomainEvent.id) > tuple_(literal(after.tx_id), literal(after.event_id)),
    )
    if horizon is not None:
        condition = and_(condition, DomainEvent.tx_id < horizon)
    return condition


def lock(session: Session, *, consumer: str, workspace_id: int) -> Position:
    """Where `consumer` stands in the workspace (START at first), with the cursor row locked until the
    caller's transaction ends: a second run of the same consumer waits here instead of handling the same
    events again (PostgreSQL: `FOR UPDATE`; SQLite: the write lock of BEGIN IMMEDIATE)."""
    row = {
        "consumer": consumer,
        "workspace_id": workspace_id,
        "last_event_id": 0,
        "last_tx_id": 0,
        "updated_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(DomainEventCursor).values(row).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(DomainEventCursor).values(row).on_conflict_do_nothing())
    found = session.execute(
        select(DomainEventCursor.last_tx_id, DomainEventCursor.last_event_id)
        .where(DomainEventCursor.consumer == consumer, DomainEventCursor.workspace_id == workspace_id)
        .with_for_update()
    ).one()
    return Position(int(found[0] or 0), int(found[1] or 0))


EVENT_COLUMNS = (
    DomainEvent.id,
    DomainEvent.tx_id,
    DomainEvent.type,
    DomainEvent.customer_id,
    DomainEvent.payload,
    DomainEvent.occurred_at,
    DomainEvent.created_at,
)


def read_after(
    session: Session,
    *,
    consumer: str,
    workspace_id: int,
    limit: int,
    start: Position | None = None,
    types: Sequence[str] | None = None,
    count: bool = False,
) -> Batch:
    """Lock `consumer`'s cursor and read the workspace's next committed events in commit order (at most
    `limit`; of `types` only, when given), in the caller's transaction. Rows have id, tx_id, type,
    customer_id, payload, occurred_at, created_at. `start` overrides where a consumer at START begins.
    The caller handles the events, then `advance`s to `batch.position` in the same transaction.

    With `types`, a read that found fewer than `limit` events has read every committed event of those
    types up to the horizon, so `batch.position` moves to the last committed event of any type: a
    consumer of a few types does not scan the same later events of other types on every run.
    """
    after = lock(session, consumer=consumer, workspace_id=workspace_id)
    if after == START and start is not None:
        after = start
    horizon = _horizon(session)
    condition = committed_after(workspace_id, after, horizon)
    if types is not None:
        condition = and_(condition, DomainEvent.type.in_(list(types)))
    events = list(
        session.execute(
            select(*EVENT_COLUMNS).where(condition).order_by(DomainEvent.tx_id, DomainEvent.id).limit(limit)
        )
    )
    position = Position(int(events[-1].tx_id), int(events[-1].id)) if events else after
    if types is not None and len(events) < limit:
        head = session.execute(
            select(DomainEvent.tx_id, DomainEvent.id)
            .where(committed_after(workspace_id, position, horizon))
            .order_by(DomainEvent.tx_id.desc(), DomainEvent.id.desc())
            .limit(1)
        ).first()
        if head is not None:
            position = Position(int(head[0]), int(head[1]))
    batch = Batch(events=events, start=after, position=position, horizon=horizon)
    if count:
        batch.pending = (
            len(events)
            if len(events) < limit
            else int(session.scalar(select(func.count()).select_from(DomainEvent).where(condition)) or 0)
        )
    return batch


def backlog(
    session: Session, *, workspace_id: int, after: Position, horizon: int | None
) -> tuple[Position, set[str]]:
    """The last committed event after `after` (below `horizon`) and the types of all of them: what a
    consumer catching up a large backlog at once needs instead of the events."""
    condition = committed_after(workspace_id, after, horizon)
    head = session.execute(
        select(DomainEvent.tx_id, DomainEvent.id)
        .where(condition)
        .order_by(DomainEvent.tx_id.desc(), DomainEvent.id.desc())
        .limit(1)
    ).first()
    types = set(session.scalars(select(DomainEvent.type).where(condition).distinct()))
    return (Position(int(head[0]), int(head[1])) if head else after), types


def advance(session: Session, *, consumer: str, workspace_id: int, position: Position) -> None:
    """Move a locked cursor to `position` (in the caller's transaction)."""
    session.execute(
        update(DomainEventCursor)
        .where(DomainEventCursor.consumer == consumer, DomainEventCursor.workspace_id == workspace_id)
        .values(last_tx_id=position.tx_id, last_event_id=position.event_id, updated_at=utcnow())
    )


def position_of(session: Session, *, consumer: str, workspace_id: int) -> tuple[Position, datetime | None]:
    """Where a consumer stands, without locking: (its position, when it last moved)."""
    found = session.execute(
        select(
            DomainEventCursor.last_tx_id, DomainEventCursor.last_event_id, DomainEventCursor.updated_at
        ).where(DomainEventCursor.consumer == consumer, DomainEventCursor.workspace_id == workspace_id)
    ).first()
    return (Position(int(found[0] or 0), int(found[1])), found[2]) if found else (START, None)


def position_before(session: Session, *, workspace_id: int, created_before: datetime) -> Position:
    """The last position among the workspace's events created before an instant (where a consumer that
    ignores older history starts)."""
    found = session.execute(
        select(DomainEvent.tx_id, DomainEvent.id)
        .where(DomainEvent.workspace_id == workspace_id, DomainEvent.created_at < created_before)
        .order_by(DomainEvent.tx_id.desc(), DomainEvent.id.desc())
        .limit(1)
    ).first()
    return Position(int(found[0]), int(found[1])) if found else START
