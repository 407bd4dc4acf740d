"""The points ledger: each source once (also under concurrent retries), never below zero, refunds
floored with a shortfall, FIFO expiry; points from imported orders via the outbox; tiers with history
and a coupon pack on upgrade."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from siyu.core.db import Database
from siyu.core.errors import Conflict
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn
from siyu.customers import service as customers
from siyu.ingest import service as ingest
from siyu.membership import service as membership
from siyu.membership.models import EntryKind, PointsAccount, PointsEntry, TierBasis
from siyu.membership.schemas import RulesIn, TierIn
from siyu.membership.service import InsufficientPoints, add_months
from tests.factories import Member, make_customer, member, next_phone, unique


def _rules(db: Database, owner: Member, **fields: Any) -> None:
    with db.transaction() as session:
        membership.set_rules(session, actor=owner.actor, body=RulesIn(**fields))


def _customer(db: Database, workspace_id: int) -> int:
    with db.transaction() as session:
        return make_customer(session, workspace_id=workspace_id).id


def _apply(
    db: Database, workspace_id: int, customer_id: int, points: int, ref: str, **kw: Any
) -> PointsEntry:
    kind = kw.pop("kind", EntryKind.EARN if points > 0 else EntryKind.SPEND)
    with db.transaction() as session:
        return membership.apply(
            session,
            workspace_id=workspace_id,
            customer_id=customer_id,
            kind=kind,
            points=points,
            source_kind=kw.pop("source_kind", "test"),
            source_ref=ref,
            **kw,
        )


def _ledger_agrees(db: Database, customer_id: int) -> int:
    """The account's balance is the sum of the ledger, and each entry's balance_after is the running sum."""
    with db.reader() as session:
        entries = list(
            session.scalars(
                select(PointsEntry).where(PointsEntry.customer_id == customer_id).order_by(PointsEntry.id)
            )
        )
        account = session.get(PointsAccount, customer_id)
    running = 0
    for entry in entries:
        running += entry.points
        assert entry.balance_after == running and running >= 0
    assert (account.balance if account else 0) == running
    return running


def test_each_source_applies_once_and_balance_never_goes_negative(db: Database, workspace_id: int) -> None:
    customer_id = _customer(db, workspace_id)
    first = _apply(db, workspace_id, customer_id, 100, "review-1")
    assert _apply(db, workspace_id, customer_id, 100, "review-1").id == first.id
    with pytest.raises(Conflict, match="another customer"):
        _apply(db, workspace_id, _customer(db, workspace_id), 100, "review-1")
    with pytest.raises(InsufficientPoints) as refused:
        _apply(db, workspace_id, customer_id, -101, "spend-1")
    assert refused.value.details == {"balance": 100}
    _apply(db, workspace_id, customer_id, -60, "spend-2")
    # a reversal larger than the balance takes what is there and records the rest
    reversal = _apply(
        db, workspace_id, customer_id, -70, "refund-1", kind=EntryKind.REVERSE, floor_at_zero=True
    )
    assert (reversal.points, reversal.shortfall, reversal.balance_after) == (-40, 30, 0)
    assert _ledger_agrees(db, customer_id) == 0


def test_concurrent_retries_apply_once(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _rules(db, owner, review_points=50)
    customer_id = _customer(db, workspace_id)
    barrier = threading.Barrier(8)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            with db.transaction() as session:
                entry = membership.earn_for_action(
                    session,
                    workspace_id=workspace_id,
                    customer_id=customer_id,
                    action="review",
                    source_ref="R-77",
                )
                assert entry is not None
                results.append(entry.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 8 and len(set(results)) == 1
    assert _ledger_agrees(db, customer_id) == 50


def test_concurrent_debits_never_overdraw(db: Database, workspace_id: int) -> None:
    customer_id = _customer(db, workspace_id)
    _apply(db, workspace_id, customer_id, 100, "gift")
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            _apply(db, workspace_id, customer_id, -30, f"spend-{n}")
            outcomes.append("spent")
        except InsufficientPoints:
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("spent") == 3 and outcomes.count("refused") == 7
    assert _ledger_agrees(db, customer_id) == 10


def test_expiry_is_fifo_and_the_sweep_writes_entries(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _rules(db, owner, expiry_months=12)
    customer_id = _customer(db, workspace_id)
    start = datetime(2025, 1, 15, tzinfo=UTC)
    _apply(db, workspace_id, customer_id, 100, "jan", at=start)  # expires 2026-01-15
    _apply(db, workspace_id, customer_id, 50, "jun", at=start + timedelta(days=150))  # expires 2026-06
    _apply(db, workspace_id, customer_id, -70, "spend", at=start + timedelta(days=200))  # takes 70 of jan's
    with db.transaction() as session:
        assert (
            membership.expire_points(session, workspace_id=workspace_id, at=datetime(2025, 12, 1, tzinfo=UTC))
            == 0
        )
        # jan's 30 left expire; jun's 50 stay
        assert (
            membership.expire_points(session, workspace_id=workspace_id, at=datetime(2026, 2, 1, tzinfo=UTC))
            == 30
        )
    with db.transaction() as session:
        assert (
            membership.expire_points(session, workspace_id=workspace_id, at=datetime(2026, 2, 2, tzinfo=UTC))
            == 0
        )
    assert _ledger_agrees(db, customer_id) == 50
    # a spend after jun's points expired cannot use them, even before the sweep ran
    with pytest.raises(InsufficientPoints):
        _apply(db, workspace_id, customer_id, -10, "late", at=datetime(2026, 7, 1, tzinfo=UTC))
    assert _ledger_agrees(db, customer_id) == 50  # the refusal wrote nothing; the sweep will expire them


def test_add_months() -> None:
    assert add_months(datetime(2025, 1, 31, tzinfo=UTC), 1) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2024, 1, 31, tzinfo=UTC), 1) == datetime(2024, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2025, 11, 5, tzinfo=UTC), 14) == datetime(2027, 1, 5, tzinfo=UTC)


def _import_orders(db: Database, workspace_id: int, records: list[dict[str, Any]]) -> None:
    with db.transaction() as session:
        _, _, rejects = ingest.import_records(
            session, workspace_id=workspace_id, kind="orders", records=records, strict=True
        )
        assert rejects == [], rejects


def _process(db: Database, workspace_id: int) -> int:
    with db.transaction() as session:
        return membership.process_order_events(session, workspace_id=workspace_id)


def test_points_from_imported_orders_and_their_refunds(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _rules(db, owner, points_per_yuan=2)
    phone = next_phone()
    placed = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    order = {"external_id": "P1", "phone": phone, "paid_cents": 12990, "placed_at": placed, "status": "paid"}
    pending = {
        "external_id": "P2",
        "phone": phone,
        "paid_cents": 5000,
        "placed_at": placed,
        "status": "pending",
    }
    _import_orders(db, workspace_id, [order, pending])
    assert _process(db, workspace_id) >= 2
    assert _process(db, workspace_id) == 0
    with db.reader() as session:
        ids, _ = customers.customer_ids_by_identity(session, actor=owner.actor, kind="phone", values=[phone])
    customer_id = ids[phone]
    assert (
        _ledger_agrees(db, customer_id) == 258
    )  # ¥129.90 → 129 whole yuan × 2; the pending order earns nothing
    # the customer spends some, then half the order is refunded, then all of it
    _apply(db, workspace_id, customer_id, -200, "spend")
    _import_orders(db, workspace_id, [{**order, "status": "partially_refunded", "refunded_cents": 6000}])
    _process(db, workspace_id)
    assert _ledger_agrees(db, customer_id) == 0  # wanted 120 back (60 yuan), 58 there: floored
    _import_orders(db, workspace_id, [{**order, "status": "refunded", "refunded_cents": 12990}])
    _import_orders(db, workspace_id, [{**pending, "status": "paid"}])
    _process(db, workspace_id)
    with db.reader() as session:
        reversals = list(
            session.scalars(
                select(PointsEntry)
                .where(PointsEntry.order_ref == "P1", PointsEntry.kind == "reverse")
                .order_by(PointsEntry.id)
            )
        )
    assert [(r.points, r.shortfall) for r in reversals] == [(-58, 62), (0, 138)]
    assert _ledger_agrees(db, customer_id) == 100  # P2, now paid: ¥50 × 2


def test_concurrent_consumers_give_points_once(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _rules(db, owner, points_per_yuan=1)
    phones = [next_phone() for _ in range(5)]
    placed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    _import_orders(
        db,
        workspace_id,
        [
            {"external_id": f"C{n}", "phone": p, "paid_cents": 10000, "placed_at": placed}
            for n, p in enumerate(phones)
        ],
    )
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            while _process(db, workspace_id):
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with db.reader() as session:
        total = session.scalar(
            select(func.sum(PointsEntry.points)).where(PointsEntry.workspace_id == workspace_id)
        )
        count = session.scalar(
            select(func.count(PointsEntry.id)).where(PointsEntry.workspace_id == workspace_id)
        )
    assert (total, count) == (500, 5)


def test_tiers_upgrade_downgrade_history_and_coupon_pack(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _rules(db, owner, tier_basis=TierBasis.POINTS)
    with db.transaction() as session:
        pack = coupons.create_template(
            session,
            actor=owner.actor,
            body=TemplateIn(name=unique("金卡礼"), type="no_threshold", discount_cents=2000, valid_days=30),
        ).id
        silver = membership.create_tier(session, actor=owner.actor, body=TierIn(name="银卡", threshold=100))
        gold = membership.create_tier(
            session, actor=owner.actor, body=TierIn(name="金卡", threshold=500, coupon_template_ids=[pack])
        )
    customer_id = _customer(db, workspace_id)
    now = datetime.now(UTC)
    _apply(db, workspace_id, customer_id, 600, "big", at=now - timedelta(days=300))
    with db.transaction() as session:
        up = membership.evaluate_tier(session, workspace_id=workspace_id, customer_id=customer_id, at=now)
        assert up is not None and (up.from_tier_id, up.to_tier_id, up.direction) == (None, gold.id, "up")
        assert (
            membership.evaluate_tier(session, workspace_id=workspace_id, customer_id=customer_id, at=now)
            is None
        )
    _apply(db, workspace_id, customer_id, 150, "small", at=now - timedelta(days=10))
    with db.transaction() as session:
        # 100 days on, the 600 are out of the 12-month window: down to 银卡
        assert (
            membership.evaluate_tiers(session, workspace_id=workspace_id, at=now + timedelta(days=100)) == 1
        )
    with db.reader() as session:
        view = membership.member_view(session, actor=owner.actor, customer_id=customer_id)
    assert view.tier == "银卡" and view.balance == 750
    assert [(c.from_tier, c.to_tier, c.direction) for c in view.tier_history] == [
        ("金卡", "银卡", "down"),
        (None, "金卡", "up"),
    ]
    assert [c.template_id for c in view.coupons] == [pack] and view.coupons[0].source_kind == "tier_upgrade"
    assert silver.id != gold.id


def test_a_merge_moves_points_and_coupons_and_an_unmerge_moves_the_points_back(
    db: Database, workspace_id: int
) -> None:
    from siyu.customers import identity

    owner = member(db, workspace_id)
    survivor, merged = _customer(db, workspace_id), _customer(db, workspace_id)
    _apply(db, workspace_id, survivor, 40, "s-1")
    _apply(db, workspace_id, merged, 70, "m-1")
    with db.transaction() as session:
        template = coupons.create_template(
            session,
            actor=owner.actor,
            body=TemplateIn(name=unique("合并券"), type="no_threshold", discount_cents=100, valid_days=3),
        )
        coupon = coupons.issue(
            session,
            workspace_id=workspace_id,
            template_id=template.id,
            customer_id=merged,
            source_kind="api",
            source_ref=None,
            idempotency_key="m",
        )
        log = identity.merge_customers(
            session,
            workspace_id=workspace_id,
            survivor_id=survivor,
            merged_id=merged,
            reason="same phone",
            actor_user_id=None,
        )
    for _ in range(2):  # a second run changes nothing
        _process(db, workspace_id)
        with db.transaction() as session:
            coupons.apply_order_events(session, workspace_id=workspace_id)
    assert (_ledger_agrees(db, survivor), _ledger_agrees(db, merged)) == (110, 0)
    with db.reader() as session:
        [held] = coupons.coupons_of_customer(session, workspace_id=workspace_id, customer_id=survivor)
        assert held.id == coupon.id
    _apply(db, workspace_id, survivor, -100, "spend-after-merge")
    with db.transaction() as session:
        identity.unmerge(session, workspace_id=workspace_id, merge_log_id=log.id, actor_user_id=None)
    _process(db, workspace_id)
    _process(db, workspace_id)
    # 70 moved in; only 10 are left to move back
    assert (_ledger_agrees(db, survivor), _ledger_agrees(db, merged)) == (0, 10)


def test_many_orders_of_one_customer_in_one_batch(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _rules(db, owner, points_per_yuan=1)
    phone = next_phone()
    placed = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    _import_orders(
        db, workspace_id, [{"external_id": "B0", "phone": phone, "paid_cents": 1000, "placed_at": placed}]
    )
    _process(db, workspace_id)
    with db.reader() as session:
        ids, _ = customers.customer_ids_by_identity(session, actor=owner.actor, kind="phone", values=[phone])
    _apply(db, workspace_id, ids[phone], -4, "spend-b")
    # three new orders, one of them refunded in the same batch
    _import_orders(
        db,
        workspace_id,
        [
            {"external_id": f"B{n}", "phone": phone, "paid_cents": 1000 * n, "placed_at": placed}
            for n in (1, 2, 3)
        ],
    )
    _import_orders(
        db,
        workspace_id,
        [
            {
                "external_id": "B2",
                "phone": phone,
                "paid_cents": 2000,
                "placed_at": placed,
                "status": "refunded",
                "refunded_cents": 2000,
            }
        ],
    )
    _process(db, workspace_id)
    assert _ledger_agrees(db, ids[phone]) == 10 - 4 + 10 + 20 + 30 - 20
