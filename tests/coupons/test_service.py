"""Coupon rules, issue caps and idempotency, redemption refusals, refunds through the outbox, reports."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent, DomainEventType
from siyu.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.coupons.models import Coupon, CouponRedemption, CouponType
from siyu.coupons.schemas import TemplateIn
from siyu.coupons.service import CODE_ALPHABET, CODE_LENGTH, CouponRefused
from tests.factories import make_customer, member, unique


def _template(db: Database, owner, **fields) -> int:  # type: ignore[no-untyped-def]
    body = {"name": unique("券")}
    if "type" not in fields:
        body.update(type="amount_off", threshold_cents=30000, discount_cents=5000)
    body.update(fields)
    if "valid_from" not in body and "valid_days" not in body:
        body["valid_days"] = 30
    with db.transaction() as session:
        return coupons.create_template(session, actor=owner.actor, body=TemplateIn(**body)).id


def _customer(db: Database, workspace_id: int) -> int:
    with db.transaction() as session:
        return make_customer(session, workspace_id=workspace_id).id


def _issue(
    db: Database, workspace_id: int, template_id: int, customer_id: int, key: str | None = None
) -> Coupon:
    with db.transaction() as session:
        return coupons.issue(
            session,
            workspace_id=workspace_id,
            template_id=template_id,
            customer_id=customer_id,
            source_kind="journey",
            source_ref="journey:7/step:2",
            idempotency_key=key or unique("k"),
        )


def _redeem(db: Database, workspace_id: int, code: str, customer_id: int, amount: int, order_ref: str = ""):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return coupons.redeem(
            session,
            workspace_id=workspace_id,
            code=code,
            customer_id=customer_id,
            order_ref=order_ref or unique("o"),
            amount_cents=amount,
        )


@pytest.mark.parametrize(
    ("fields", "amount", "discount", "benefit", "item_price"),
    [
        # 满300减50 on ¥320: ¥50 off
        ({"type": "amount_off", "threshold_cents": 30000, "discount_cents": 5000}, 32000, 5000, 5000, None),
        # 八折 up to ¥30 on ¥100: ¥20; on ¥200: ¥40 capped at ¥30; on ¥0.99: 19.8 cents → 19
        ({"type": "percent_off", "percent_off": 20, "cap_cents": 3000}, 10000, 2000, 2000, None),
        ({"type": "percent_off", "percent_off": 20, "cap_cents": 3000}, 20000, 3000, 3000, None),
        ({"type": "percent_off", "percent_off": 20}, 99, 19, 19, None),
        # 无门槛 ¥10 on ¥6: never more than the order
        ({"type": "no_threshold", "discount_cents": 1000}, 600, 600, 600, None),
        ({"type": "no_threshold", "discount_cents": 1000}, 5000, 1000, 1000, None),
        # 满赠: a ¥39 cup with ¥199: nothing off, the gift's value is the cost
        (
            {
                "type": "gift",
                "threshold_cents": 19900,
                "item_sku": "CUP",
                "item_name": "杯子",
                "item_price_cents": 3900,
            },
            19900,
            0,
            3900,
            0,
        ),
        # 加价购: with ¥99, a ¥39 item for ¥9.90: ¥29.10 given
        (
            {
                "type": "add_on",
                "threshold_cents": 9900,
                "item_sku": "BAG",
                "item_name": "帆布袋",
                "item_price_cents": 3900,
                "add_on_price_cents": 990,
            },
            9900,
            0,
            2910,
            990,
        ),
    ],
)
def test_each_coupon_type_gives_its_rule(
    db: Database, workspace_id: int, fields, amount, discount, benefit, item_price
) -> None:  # type: ignore[no-untyped-def]
    owner = member(db, workspace_id)
    template_id = _template(db, owner, **fields)
    customer_id = _customer(db, workspace_id)
    coupon = _issue(db, workspace_id, template_id, customer_id)
    result = _redeem(db, workspace_id, coupon.code, customer_id, amount)
    assert result.discount_cents == discount
    assert result.benefit.benefit_cents == benefit
    assert result.benefit.item_price_cents == item_price


def test_codes_are_long_random_and_unique(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner, per_customer_cap=50)
    customer_id = _customer(db, workspace_id)
    codes = [_issue(db, workspace_id, template_id, customer_id).code for _ in range(50)]
    assert len(set(codes)) == 50
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in codes)
    # no two codes share a long prefix, as a counter or a clock would
    assert len({c[:6] for c in codes}) == 50


def test_a_retried_issue_returns_the_same_coupon(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner, per_customer_cap=3)
    customer_id = _customer(db, workspace_id)
    first = _issue(db, workspace_id, template_id, customer_id, key="broadcast-9:customer")
    again = _issue(db, workspace_id, template_id, customer_id, key="broadcast-9:customer")
    assert first.id == again.id and first.code == again.code
    with db.reader() as session:
        template = coupons.get_template(session, workspace_id=workspace_id, template_id=template_id)
        assert template.issued_count == 1
    # the same key for someone else is a caller's mistake, not a coupon for them
    with pytest.raises(Conflict, match="another customer"):
        _issue(db, workspace_id, template_id, _customer(db, workspace_id), key="broadcast-9:customer")


def test_caps_per_customer_and_in_total(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner, per_customer_cap=1, total_cap=2)
    a, b, c = (_customer(db, workspace_id) for _ in range(3))
    _issue(db, workspace_id, template_id, a)
    with pytest.raises(Conflict, match="the most one customer may"):
        _issue(db, workspace_id, template_id, a)
    _issue(db, workspace_id, template_id, b)
    with pytest.raises(Conflict, match="issued all 2"):
        _issue(db, workspace_id, template_id, c)


def test_total_cap_holds_under_concurrent_issues(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner, total_cap=5)
    people = [_customer(db, workspace_id) for _ in range(12)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(people))

    def run(customer_id: int) -> None:
        barrier.wait()
        try:
            _issue(db, workspace_id, template_id, customer_id)
            outcomes.append("issued")
        except Conflict:
            outcomes.append("capped")

    threads = [threading.Thread(target=run, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.reader() as session:
        count = session.scalar(select(func.count(Coupon.id)).where(Coupon.template_id == template_id))
    assert count == 5 and outcomes.count("issued") == 5 and outcomes.count("capped") == 7


def test_concurrent_retries_of_one_issue_make_one_coupon(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner, per_customer_cap=10)
    customer_id = _customer(db, workspace_id)
    ids: list[int] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        ids.append(_issue(db, workspace_id, template_id, customer_id, key="referral-42").id)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1


def test_refusals_say_why(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner)
    holder, stranger = _customer(db, workspace_id), _customer(db, workspace_id)
    coupon = _issue(db, workspace_id, template_id, holder)

    def reason(code: str, customer_id: int, amount: int = 40000, order_ref: str = "") -> str:
        with pytest.raises(CouponRefused) as refused:
            _redeem(db, workspace_id, code, customer_id, amount, order_ref)
        return refused.value.reason

    assert reason(coupon.code, holder, amount=29999) == "threshold_not_met"
    # another customer's code and a code that does not exist are refused alike
    assert reason(coupon.code, stranger) == "not_found"
    assert reason("Z" * CODE_LENGTH, holder) == "not_found"
    assert reason("'; DROP TABLE coupon; --", holder) == "not_found"
    first = _redeem(db, workspace_id, coupon.code.lower(), holder, 40000, "ORD-1")  # any case
    assert first.discount_cents == 5000
    assert reason(coupon.code, holder, order_ref="ORD-2") == "used"
    # a retry of the same redemption answers with it again
    assert _redeem(db, workspace_id, coupon.code, holder, 40000, "ORD-1").id == first.id

    revoked = _issue(db, workspace_id, template_id, stranger)
    with db.transaction() as session:
        coupons.revoke(session, actor=owner.actor, coupon_id=revoked.id, reason="test")
    assert reason(revoked.code, stranger) == "revoked"

    later = _template(
        db,
        owner,
        valid_from=utcnow() + timedelta(days=1),
        valid_until=utcnow() + timedelta(days=9),
    )
    early = _issue(db, workspace_id, later, holder)
    assert reason(early.code, holder) == "not_yet_valid"

    with db.transaction() as session:
        old = coupons.issue(
            session,
            workspace_id=workspace_id,
            template_id=_template(db, owner, valid_days=1),
            customer_id=holder,
            source_kind="api",
            source_ref=None,
            idempotency_key="old",
            at=utcnow() - timedelta(days=2),
        )
    assert reason(old.code, holder) == "expired"
    with db.reader() as session:
        statuses = {
            c.code: c.status
            for c in coupons.coupons_of_customer(session, workspace_id=workspace_id, customer_id=holder)
        }
    assert statuses[old.code] == "expired" and statuses[coupon.code] == "redeemed"


def test_concurrent_redemptions_on_two_orders_use_the_coupon_once(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner)
    holder = _customer(db, workspace_id)
    coupon = _issue(db, workspace_id, template_id, holder)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def run(n: int) -> None:
        barrier.wait()
        try:
            _redeem(db, workspace_id, coupon.code, holder, 40000, f"ORDER-{n % 2}")
            outcomes.append(f"ok-{n % 2}")
        except CouponRefused as refused:
            outcomes.append(refused.reason)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.reader() as session:
        rows = list(session.scalars(select(CouponRedemption).where(CouponRedemption.coupon_id == coupon.id)))
    assert len(rows) == 1
    winner = rows[0].order_ref[-1]
    # the same order's retries all succeed with the one redemption; the other order is refused
    assert sorted(outcomes) == sorted([f"ok-{winner}"] * 3 + ["used"] * 3)


def test_full_refund_reverses_the_redemption_through_the_outbox(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner, cost_per_redemption_cents=100)
    holder = _customer(db, workspace_id)
    coupon = _issue(db, workspace_id, template_id, holder)
    _redeem(db, workspace_id, coupon.code, holder, 40000, "ORD-R")
    with db.transaction() as session:
        for status, refunded in (("partially_refunded", 1000), ("refunded", 35000)):
            session.add(
                DomainEvent(
                    workspace_id=workspace_id,
                    type=str(DomainEventType.ORDER_REFUNDED),
                    customer_id=holder,
                    payload={"external_id": "ORD-R", "status": status, "refunded_cents": refunded},
                    occurred_at=utcnow(),
                    created_at=utcnow(),
                )
            )
    with db.transaction() as session:
        assert coupons.reports(session, workspace_id=workspace_id, template_id=template_id)[0].redeemed == 1
        assert coupons.apply_order_events(session, workspace_id=workspace_id) == 2
        assert coupons.apply_order_events(session, workspace_id=workspace_id) == 0
    with db.reader() as session:
        [redemption] = session.scalars(
            select(CouponRedemption).where(CouponRedemption.coupon_id == coupon.id)
        )
        assert redemption.reversed_at is not None and redemption.reversal_reason == "order refunded"
        assert session.get(Coupon, coupon.id).status == "issued"  # type: ignore[union-attr]
        [report] = coupons.reports(session, workspace_id=workspace_id, template_id=template_id)
        assert report.redeemed == 0 and report.cost_cents == 0
    # usable again, on another order
    assert _redeem(db, workspace_id, coupon.code, holder, 40000, "ORD-S").discount_cents == 5000


def test_reports_in_sql(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    template_id = _template(db, owner, per_customer_cap=5, cost_per_redemption_cents=200)
    holder = _customer(db, workspace_id)
    issued = [_issue(db, workspace_id, template_id, holder) for _ in range(4)]
    _redeem(db, workspace_id, issued[0].code, holder, 40000)
    _redeem(db, workspace_id, issued[1].code, holder, 60000)
    with db.reader() as session:
        [report] = coupons.reports(session, workspace_id=workspace_id, template_id=template_id)
    assert (report.issued, report.redeemed) == (4, 2)
    assert report.redemption_rate == pytest.approx(0.5)
    # GMV: what the two orders paid, (400 − 50) + (600 − 50); cost: 2 × (50 + 2)
    assert report.attributed_gmv_cents == 90000
    assert report.cost_cents == 10400
    assert report.roi == pytest.approx((90000 - 10400) / 10400)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"type": "amount_off", "threshold_cents": 0, "discount_cents": 500}, "threshold_cents"),
        ({"type": "amount_off", "threshold_cents": 100, "discount_cents": 500}, "discount_cents"),
        ({"type": "percent_off", "percent_off": 0}, "percent_off"),
        ({"type": "no_threshold", "discount_cents": 0}, "discount_cents"),
        ({"type": "gift", "threshold_cents": 100}, "item_sku"),
        (
            {
                "type": "add_on",
                "item_sku": "A",
                "item_name": "A",
                "item_price_cents": 100,
                "add_on_price_cents": 100,
            },
            "add_on_price_cents",
        ),
        ({"valid_days": 3, "valid_from": datetime(2026, 1, 1, tzinfo=UTC)}, "valid_days"),
        (
            {"valid_from": datetime(2026, 2, 1, tzinfo=UTC), "valid_until": datetime(2026, 1, 1, tzinfo=UTC)},
            "valid_until",
        ),
    ],
)
def test_bad_templates_are_refused_with_where(db: Database, workspace_id: int, fields, where) -> None:  # type: ignore[no-untyped-def]
    owner = member(db, workspace_id)
    with pytest.raises(ValidationFailed) as failed:
        _template(db, owner, **fields)
    assert failed.value.where == where


def test_roles_and_workspaces(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    analyst = member(db, workspace_id, Role.ANALYST)
    template_id = _template(db, owner)
    with pytest.raises(PermissionDenied), db.transaction() as session:
        coupons.create_template(
            session,
            actor=analyst.actor,
            body=TemplateIn(name="x", type=CouponType.NO_THRESHOLD, discount_cents=1, valid_days=1),
        )
    with db.transaction() as session:
        from siyu.workspaces import service as workspaces

        other = workspaces.create_workspace(session, slug=unique("ws"), name="B").id
        theirs = make_customer(session, workspace_id=other).id
    with pytest.raises(NotFound):
        _issue(db, workspace_id, template_id, theirs)
    with pytest.raises(NotFound):
        _issue(db, other, template_id, theirs)
