"""Live membership: backfill on create and change, incremental processing of domain events for only the
affected segments and customers, merges and erasure, the time sweep, deletion, segments naming segments,
rule tags, reconciliation with repair, the bulk path, members over time — and exactly one
segment.entered / segment.left per real change, also with two processors at once on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from siyu.auth.service import Actor
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import Conflict
from siyu.customers import identity, privacy
from siyu.customers import service as customers
from siyu.customers.schemas import ProfileUpdate
from siyu.ingest import service as ingest
from siyu.segments import membership
from siyu.segments import service as segments
from siyu.segments.models import Segment, SegmentMembership
from siyu.tags import service as tags
from siyu.tags.models import CustomerTag
from tests.factories import make_customer, make_tag, member, next_phone

NOW = datetime.now(UTC).replace(microsecond=0)


def _order(
    phone: str, external_id: str, *, paid: int = 3000, status: str = "paid", days_ago: float = 1
) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "phone": phone,
        "status": status,
        "paid_cents": paid,
        "refunded_cents": paid if status == "refunded" else 0,
        "placed_at": (NOW - timedelta(days=days_ago)).isoformat(),
    }


def _import_orders(db: Database, workspace_id: int, records: list[dict[str, Any]]) -> None:
    with db.transaction() as session:
        _, _, rejects = ingest.import_records(
            session, workspace_id=workspace_id, kind="orders", records=records, strict=True
        )
        assert rejects == []


def _process(
    db: Database, workspace_id: int, now: datetime | None = None, limit: int = 1000
) -> list[segments.RunResult]:
    runs = []
    while True:
        with db.transaction() as session:
            run = segments.process_pending(session, workspace_id=workspace_id, now=now or NOW, limit=limit)
        runs.append(run)
        if not run.remaining:
            return runs


def _members(db: Database, segment_id: int) -> set[int]:
    with db.reader() as session:
        segment = session.get(Segment, segment_id)
        assert segment is not None
        return membership.current_members(session, segment=segment)


def _changes(db: Database, workspace_id: int, segment_id: int) -> list[tuple[str, int]]:
    with db.reader() as session:
        rows = session.execute(
            select(DomainEvent.type, DomainEvent.customer_id, DomainEvent.payload)
            .where(
                DomainEvent.workspace_id == workspace_id,
                DomainEvent.type.in_(["segment.entered", "segment.left"]),
            )
            .order_by(DomainEvent.id)
        ).all()
    # erasure empties the payloads of an erased customer's events: those count for the only segment
    return [(t, c) for t, c, p in rows if p.get("segment_id", segment_id) == segment_id]


def _customer_id(db: Database, actor: Actor, phone: str) -> int:
    with db.reader() as session:
        found, _ = customers.customer_ids_by_identity(session, actor=actor, kind="phone", values=[phone])
    return found[phone]


def test_backfill_then_orders_and_refunds_move_customers_once(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    phones = [next_phone() for _ in range(3)]
    _import_orders(
        db, workspace_id, [_order(phones[0], "o1"), _order(phones[0], "o2"), _order(phones[1], "o3")]
    )
    with db.transaction() as session:
        seg = segments.create_segment(session, actor=owner, name="复购", rule="order_count >= 2")
    repeat, once = (_customer_id(db, owner, p) for p in phones[:2])
    assert _members(db, seg.id) == {repeat}  # backfilled on create
    _process(db, workspace_id)  # the import's events change nothing more
    assert _changes(db, workspace_id, seg.id) == [("segment.entered", repeat)]

    _import_orders(db, workspace_id, [_order(phones[1], "o4"), _order(phones[2], "o5")])
    [run] = _process(db, workspace_id)
    assert (run.entered, run.left) == (1, 0)
    assert _members(db, seg.id) == {repeat, once}
    # a refund takes the second purchase back: the customer leaves
    _import_orders(db, workspace_id, [_order(phones[1], "o4", status="refunded")])
    _process(db, workspace_id)
    assert _members(db, seg.id) == {repeat}
    # processing again reads only the segment's own events and changes nothing; every real change was
    # emitted exactly once
    [again] = _process(db, workspace_id)
    assert (again.entered, again.left) == (0, 0)
    [idle] = _process(db, workspace_id)
    assert idle.events == 0
    assert _changes(db, workspace_id, seg.id) == [
        ("segment.entered", repeat),
        ("segment.entered", once),
        ("segment.left", once),
    ]
    with db.reader() as session:
        stays = session.scalars(
            select(SegmentMembership).where(
                SegmentMembership.segment_id == seg.id, SegmentMembership.customer_id == once
            )
        ).all()
    assert [(s.left_at is None, s.entered_version) for s in stays] == [(False, 1)]


def test_only_affected_segments_and_customers_are_evaluated(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        vip = make_tag(session, actor=owner, name="VIP")
        customer = make_customer(session, workspace_id=workspace_id, city="上海")
        other = make_customer(session, workspace_id=workspace_id, city="上海")
        by_tag = segments.create_segment(session, actor=owner, name="VIP", rule='tag("VIP")')
        by_city = segments.create_segment(session, actor=owner, name="上海", rule='city = "上海"')
        by_orders = segments.create_segment(session, actor=owner, name="买过", rule="order_count >= 1")
    _process(db, workspace_id)
    with db.transaction() as session:
        tags.tag_customer(session, actor=owner, customer_id=customer.id, tag_id=vip.id)
    # a consumer reads committed events only (on PostgreSQL, below the oldest running transaction)
    with db.transaction() as session:
        evaluated: list[tuple[int, set[int] | None]] = []
        original = membership._apply

        def spy(session_: Any, segment: Segment, **kw: Any) -> membership.Change:
            evaluated.append((segment.id, None if kw["scope"] is None else set(kw["scope"])))
            return original(session_, segment, **kw)

        membership._apply = spy  # type: ignore[assignment]
        try:
            run = segments.process_pending(session, workspace_id=workspace_id, now=NOW)
        finally:
            membership._apply = original  # type: ignore[assignment]
    assert evaluated == [(by_tag.id, {customer.id})]  # not the city or order segments, not the other customer
    assert (run.entered, run.left) == (1, 0)
    with db.transaction() as session:
        customers.update_profile(
            session, actor=owner, customer_id=other.id, changes=ProfileUpdate(city="北京")
        )
    _process(db, workspace_id)
    assert _members(db, by_city.id) == {customer.id}
    assert _members(db, by_tag.id) == {customer.id}
    assert _members(db, by_orders.id) == set()


def test_merge_and_erasure(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        survivor = make_customer(session, workspace_id=workspace_id, city="上海")
        merged = make_customer(session, workspace_id=workspace_id, city="上海")
        gone = make_customer(session, workspace_id=workspace_id, city="上海")
        seg = segments.create_segment(session, actor=owner, name="上海", rule='city = "上海"')
    assert _members(db, seg.id) == {survivor.id, merged.id, gone.id}
    with db.transaction() as session:
        identity.merge_customers(
            session,
            workspace_id=workspace_id,
            survivor_id=survivor.id,
            merged_id=merged.id,
            reason="test",
            actor_user_id=owner.user_id,
        )
        privacy.erase_person(session, actor=owner, customer_id=gone.id)
    _process(db, workspace_id)
    assert _members(db, seg.id) == {survivor.id}
    assert Counter(t for t, _ in _changes(db, workspace_id, seg.id)) == {
        "segment.entered": 3,
        "segment.left": 2,
    }


def test_time_sweep_moves_customers_without_events(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    phone = next_phone()
    _import_orders(db, workspace_id, [_order(phone, "t1", days_ago=20)])
    with db.transaction() as session:
        recent = segments.create_segment(
            session, actor=owner, name="近30天", rule='orders(within="30d").count >= 1'
        )
        quiet = segments.create_segment(session, actor=owner, name="沉睡", rule='last_order_at < ago("60d")')
        steady = segments.create_segment(session, actor=owner, name="买过", rule="order_count >= 1")
    customer_id = _customer_id(db, owner, phone)
    _process(db, workspace_id)
    assert _members(db, recent.id) == {customer_id} and _members(db, quiet.id) == set()
    later = NOW + timedelta(days=11)  # the order is 31 days old
    with db.transaction() as session:
        run = segments.sweep(session, workspace_id=workspace_id, now=later)
    assert (run.entered, run.left) == (0, 1)
    assert _members(db, recent.id) == set()
    with db.transaction() as session:
        segments.sweep(session, workspace_id=workspace_id, now=NOW + timedelta(days=41))
    assert _members(db, quiet.id) == {customer_id}
    with db.reader() as session:
        swept = {s.id: s.swept_at for s in segments.list_segments(session, workspace_id=workspace_id)}
        status = {
            s.id: s for s in segments.segment_statuses(session, actor=owner, now=NOW + timedelta(days=41))
        }
    assert swept[steady.id] is None and swept[recent.id] == NOW + timedelta(days=41)
    assert status[recent.id].time_dependent and not status[steady.id].time_dependent
    assert status[recent.id].lag_seconds == 0 and status[steady.id].members == 1
    with db.reader() as session:
        behind = {
            s.id: s for s in segments.segment_statuses(session, actor=owner, now=NOW + timedelta(days=42))
        }
    assert behind[recent.id].state == "lagging" and behind[steady.id].state == "current"


def test_rule_change_backfills_with_a_new_version_and_delete_closes(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        a = make_customer(session, workspace_id=workspace_id, city="上海")
        b = make_customer(session, workspace_id=workspace_id, city="北京")
        seg = segments.create_segment(session, actor=owner, name="上海", rule='city = "上海"')
        outer = segments.create_segment(
            session, actor=owner, name="上海内", rule='segment("上海") and has(phone)'
        )
    assert _members(db, outer.id) == {a.id}
    with db.transaction() as session:
        updated = segments.update_segment(session, actor=owner, segment_id=seg.id, rule='city = "北京"')
    assert updated.version == 2
    assert _members(db, seg.id) == {b.id} and _members(db, outer.id) == {b.id}  # the dependent follows
    with db.reader() as session:
        payloads = [
            p
            for t, p in session.execute(
                select(DomainEvent.type, DomainEvent.payload).where(
                    DomainEvent.workspace_id == workspace_id, DomainEvent.type == "segment.entered"
                )
            )
            if p["segment_id"] == seg.id
        ]
    assert [(p["version"], p["reason"]) for p in payloads] == [(1, "backfill"), (2, "backfill")]
    with db.transaction() as session:
        segments.delete_segment(session, actor=owner, segment_id=seg.id)
    assert _members(db, seg.id) == set()
    with db.reader() as session:
        [status] = segments.segment_statuses(session, actor=owner)
    assert status.id == outer.id and status.state == "error" and "deleted" in (status.evaluation_error or "")


def test_rule_tag_follows_membership_and_leaves_manual_tags(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        vip = make_tag(session, actor=owner, name="高价值")
        a = make_customer(session, workspace_id=workspace_id, city="上海")
        b = make_customer(session, workspace_id=workspace_id, city="上海")
        tags.tag_customer(session, actor=owner, customer_id=b.id, tag_id=vip.id)  # by hand
        seg = segments.create_segment(session, actor=owner, name="上海", rule='city = "上海"')
        segments.set_rule_tag(session, actor=owner, segment_id=seg.id, tag_id=vip.id)
    with db.reader() as session:
        carried = dict(
            session.execute(
                select(CustomerTag.customer_id, CustomerTag.source).where(CustomerTag.tag_id == vip.id)
            ).all()
        )
    assert carried == {a.id: "rule", b.id: "manual"}
    with db.transaction() as session:
        for customer in (a, b):
            customers.update_profile(
                session, actor=owner, customer_id=customer.id, changes=ProfileUpdate(city="北京")
            )
    _process(db, workspace_id)
    with db.reader() as session:
        carried = dict(
            session.execute(
                select(CustomerTag.customer_id, CustomerTag.source).where(CustomerTag.tag_id == vip.id)
            ).all()
        )
    assert carried == {b.id: "manual"}  # the rule took back only what it gave
    with db.transaction() as session:
        other = segments.create_segment(session, actor=owner, name="高价值里", rule='tag("高价值")')
        with pytest.raises(Conflict, match="the tag it would give"):
            segments.set_rule_tag(session, actor=owner, segment_id=other.id, tag_id=vip.id)


def test_reconcile_reports_and_repairs_drift(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        a = make_customer(session, workspace_id=workspace_id, city="上海")
        make_customer(session, workspace_id=workspace_id, city="上海")
        seg = segments.create_segment(session, actor=owner, name="上海", rule='city = "上海"')
    with db.transaction() as session:
        [clean] = segments.reconcile(session, workspace_id=workspace_id)
    assert (clean.missing, clean.extra) == (0, 0)
    with db.transaction() as session:  # membership broken behind the service's back
        session.execute(delete(SegmentMembership).where(SegmentMembership.customer_id == a.id))
    with db.transaction() as session:
        [found] = segments.reconcile(session, workspace_id=workspace_id)
    assert (found.missing, found.extra, found.repaired) == (1, 0, False)
    with db.reader() as session:
        [status] = segments.segment_statuses(session, actor=owner)
    assert status.state == "drift" and status.drift_missing == 1
    with db.transaction() as session:
        [fixed] = segments.reconcile(session, workspace_id=workspace_id, repair=True)
    assert fixed.repaired and a.id in _members(db, seg.id)
    with db.transaction() as session:
        [after] = segments.reconcile(session, workspace_id=workspace_id)
    assert (after.missing, after.extra) == (0, 0)


def test_a_large_backlog_is_caught_up_by_full_evaluation(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        seg = segments.create_segment(session, actor=owner, name="买过", rule="order_count >= 1")
    phones = [next_phone() for _ in range(12)]
    _import_orders(db, workspace_id, [_order(p, f"b{i}") for i, p in enumerate(phones)])
    with db.transaction() as session:
        run = membership.process_pending(
            session, workspace_id=workspace_id, limit=5, bulk_threshold=10, now=NOW
        )
    assert run.full and run.remaining == 0 and run.changes[seg.id].entered == 12
    assert len(_members(db, seg.id)) == 12


def test_members_over_time_and_pages(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        people = [make_customer(session, workspace_id=workspace_id, city="上海") for _ in range(3)]
        seg = segments.create_segment(session, actor=owner, name="上海", rule='city = "上海"')
    with db.transaction() as session:
        customers.update_profile(
            session, actor=owner, customer_id=people[0].id, changes=ProfileUpdate(city="北京")
        )
    _process(db, workspace_id, now=NOW + timedelta(days=2))
    with db.reader() as session:
        points = segments.members_over_time(
            session, actor=owner, segment_id=seg.id, days=5, now=NOW + timedelta(days=3)
        )
        first = segments.segment_members(session, actor=owner, segment_id=seg.id, limit=1)
        rest = segments.segment_members(
            session, actor=owner, segment_id=seg.id, cursor=first.next_cursor, limit=1
        )
    counts = [p.members for p in points]
    assert counts[0] == 0 and counts[-1] == 2 and 3 in counts
    assert [m.id for m in first.members + rest.members] == [people[2].id, people[1].id]
    assert rest.next_cursor is None


def test_processors_at_once_emit_each_change_once(db: Database, workspace_id: int) -> None:
    # on SQLite the three serialise on the write lock; on PostgreSQL they race for the cursor row
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        seg = segments.create_segment(session, actor=owner, name="买过", rule="order_count >= 1")
    _import_orders(db, workspace_id, [_order(next_phone(), f"c{i}") for i in range(40)])
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            _process(db, workspace_id, limit=7)  # many small runs, so that they interleave
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    changes = _changes(db, workspace_id, seg.id)
    assert len(changes) == 40 and len(set(changes)) == 40
    assert len(_members(db, seg.id)) == 40


def test_a_file_import_brings_membership_current(db: Database, workspace_id: int, tmp_path: Any) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        seg = segments.create_segment(session, actor=owner, name="买过", rule="order_count >= 1")
    phone = next_phone()
    placed = (NOW - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path / "orders.csv"
    path.write_text(f"手机号,订单号,实付金额,下单时间\n{phone},F1,32.00,{placed}\n", encoding="utf-8")
    job = ingest.import_file(db, workspace_id=workspace_id, kind="orders", path=path)
    assert job.status == "done", job.error
    assert _members(db, seg.id) == {_customer_id(db, owner, phone)}
