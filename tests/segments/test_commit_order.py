"""The outbox in commit order: a consumer never moves past an event whose transaction is still open.

On PostgreSQL, with two real connections: T1 writes an event and stays open, T2 writes a later id and
commits; the segment engine runs and must not skip T1's event once T1 commits (read by id alone, it
would handle T2's id, move its cursor past T1's and lose it). Bulk loads (COPY) get the writing
transaction's id from the column's server default."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from siyu.core import domain_events
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.ingest import service as ingest
from siyu.segments import membership
from siyu.segments import service as segments
from siyu.segments.models import Segment
from siyu.tags import service as tags
from tests.factories import make_customer, make_tag, member, next_phone


def _members(db: Database, segment_id: int) -> set[int]:
    with db.reader() as session:
        segment = session.get(Segment, segment_id)
        assert segment is not None
        return membership.current_members(session, segment=segment)


def _process(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        segments.process_pending(session, workspace_id=workspace_id)


@pytest.mark.postgres  # SQLite has one writer at a time: ids commit in order there
def test_an_event_committed_late_is_not_skipped(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        vip = make_tag(session, actor=owner, name="VIP")
        late = make_customer(session, workspace_id=workspace_id)
        early = make_customer(session, workspace_id=workspace_id)
        seg = segments.create_segment(session, actor=owner, name="VIP", rule='tag("VIP")')
    _process(db, workspace_id)
    with db.transaction() as t1:
        tags.tag_customer(t1, actor=owner, customer_id=late.id, tag_id=vip.id)
        t1.flush()
        t1_tx = int(t1.scalar(text("SELECT pg_current_xact_id()::text::bigint")))
        t1_event = t1.scalar(
            select(func.max(DomainEvent.id)).where(
                DomainEvent.workspace_id == workspace_id, DomainEvent.tx_id == t1_tx
            )
        )
        with db.transaction() as t2:
            tags.tag_customer(t2, actor=owner, customer_id=early.id, tag_id=vip.id)
        with db.reader() as session:
            t2_event = session.scalar(
                select(func.max(DomainEvent.id)).where(
                    DomainEvent.workspace_id == workspace_id, DomainEvent.customer_id == early.id
                )
            )
        assert t1_event is not None and t2_event is not None and t2_event > t1_event
        _process(db, workspace_id)  # T1 is still open
        with db.reader() as session:
            position, _ = domain_events.position_of(
                session, consumer=membership.CONSUMER, workspace_id=workspace_id
            )
        assert position.tx_id < t1_tx  # the cursor did not pass T1
        assert late.id not in _members(db, seg.id)
    # T1 has committed: both customers enter (other transactions of the server may hold the horizon
    # back for a moment, so look again for a few seconds)
    deadline = time.monotonic() + 10
    while _members(db, seg.id) != {late.id, early.id} and time.monotonic() < deadline:
        _process(db, workspace_id)
        time.sleep(0.05)
    assert _members(db, seg.id) == {late.id, early.id}


@pytest.mark.postgres
def test_a_transaction_of_another_database_does_not_hold_the_consumer(
    db: Database, workspace_id: int
) -> None:
    import psycopg

    from tests.conftest import PG_URL

    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        vip = make_tag(session, actor=owner, name="VIP")
        customer = make_customer(session, workspace_id=workspace_id)
        seg = segments.create_segment(session, actor=owner, name="VIP", rule='tag("VIP")')
    # an open writing transaction in the server's maintenance database (another application)
    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://")) as other:
        other.execute("SELECT pg_current_xact_id()")
        with db.transaction() as session:
            tags.tag_customer(session, actor=owner, customer_id=customer.id, tag_id=vip.id)
        _process(db, workspace_id)
        assert customer.id in _members(db, seg.id)
        other.rollback()


def test_bulk_loads_carry_the_writing_transaction(db: Database, workspace_id: int) -> None:
    placed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    records = [
        {
            "external_id": f"b{i}",
            "phone": next_phone(),
            "status": "paid",
            "paid_cents": 100,
            "placed_at": placed,
        }
        for i in range(5)
    ]
    with db.transaction() as session:
        _, _, rejects = ingest.import_records(
            session, workspace_id=workspace_id, kind="orders", records=records, strict=True
        )
        assert rejects == []
        xact = int(session.scalar(text("SELECT pg_current_xact_id()::text::bigint"))) if db.is_postgres else 0
    with db.reader() as session:
        found = set(
            session.scalars(
                select(DomainEvent.tx_id).where(
                    DomainEvent.workspace_id == workspace_id, DomainEvent.type == "order.placed"
                )
            )
        )
    assert found == {xact}
    assert not db.is_postgres or xact > 0
