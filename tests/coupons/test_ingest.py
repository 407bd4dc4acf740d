"""Coupons redeemed through order ingest (a `coupon_code` column) and reversed by the refund's outbox
event; orders without a code are left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from siyu.core.db import Database
from siyu.coupons import service as coupons
from siyu.coupons.models import Coupon, CouponRedemption
from siyu.coupons.schemas import TemplateIn
from siyu.ingest import service as ingest
from tests.factories import make_customer, member, next_phone, unique


def _coupon(db: Database, workspace_id: int, phone: str) -> tuple[int, str]:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        template = coupons.create_template(
            session,
            actor=owner.actor,
            body=TemplateIn(
                name=unique("满100减20"),
                type="amount_off",
                threshold_cents=10000,
                discount_cents=2000,
                valid_days=30,
            ),
        )
        customer = make_customer(session, workspace_id=workspace_id, phone=phone)
        coupon = coupons.issue(
            session,
            workspace_id=workspace_id,
            template_id=template.id,
            customer_id=customer.id,
            source_kind="broadcast",
            source_ref="b-1",
            idempotency_key="b-1",
        )
        return template.id, coupon.code


def _import(db: Database, workspace_id: int, records: list[dict]):  # type: ignore[no-untyped-def,type-arg]
    with db.transaction() as session:
        _job, result, rejects = ingest.import_records(
            session, workspace_id=workspace_id, kind="orders", records=records
        )
        return result, rejects


def test_an_imported_order_with_a_coupon_redeems_it_once(db: Database, workspace_id: int) -> None:
    phone = next_phone()
    template_id, code = _coupon(db, workspace_id, phone)
    placed = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    order = {
        "external_id": "CP-1",
        "phone": phone,
        "total_cents": 12800,
        "discount_cents": 2000,
        "paid_cents": 10800,
        "placed_at": placed,
        "coupon_code": code,
    }
    plain = {"external_id": "CP-2", "phone": next_phone(), "paid_cents": 5000, "placed_at": placed}
    result, rejects = _import(db, workspace_id, [order, plain])
    assert result.inserted == 2 and rejects == []
    _, rejects = _import(db, workspace_id, [order])
    assert rejects == []
    with db.reader() as session:
        [redemption] = session.scalars(
            select(CouponRedemption).where(CouponRedemption.template_id == template_id)
        )
        assert (redemption.order_ref, redemption.order_amount_cents, redemption.discount_cents) == (
            "CP-1",
            12800,
            2000,
        )
        assert session.scalar(select(Coupon.status).where(Coupon.code == code)) == "redeemed"
    # the refund arrives as another import; the outbox consumer reverses the redemption
    _import(db, workspace_id, [{**order, "status": "refunded", "refunded_cents": 10800}])
    with db.transaction() as session:
        assert coupons.apply_order_events(session, workspace_id=workspace_id) > 0
    with db.reader() as session:
        assert session.scalar(select(Coupon.status).where(Coupon.code == code)) == "issued"
        [report] = coupons.reports(session, workspace_id=workspace_id, template_id=template_id)
        assert report.redeemed == 0


def test_a_refused_coupon_is_reported_and_its_order_still_loads(db: Database, workspace_id: int) -> None:
    phone = next_phone()
    _template_id, code = _coupon(db, workspace_id, phone)
    placed = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    records = [
        {"external_id": "CQ-1", "phone": phone, "paid_cents": 5000, "placed_at": placed, "coupon_code": code},
        {
            "external_id": "CQ-2",
            "phone": next_phone(),
            "paid_cents": 50000,
            "placed_at": placed,
            "coupon_code": code,
        },
        {
            "external_id": "CQ-3",
            "phone": phone,
            "paid_cents": 50000,
            "placed_at": placed,
            "coupon_code": "NOT-A-CODE",
        },
    ]
    result, rejects = _import(db, workspace_id, records)
    assert result.inserted == 3
    assert [(r.row_number, r.column) for r in rejects] == [
        (1, "coupon_code"),
        (2, "coupon_code"),
        (3, "coupon_code"),
    ]
    assert (
        "below this coupon's threshold" in rejects[0].reason and "the order was loaded" in rejects[0].reason
    )
    assert "no usable coupon" in rejects[1].reason and "no usable coupon" in rejects[2].reason
    with db.reader() as session:
        assert (
            session.scalar(
                select(func.count(CouponRedemption.id)).where(CouponRedemption.workspace_id == workspace_id)
            )
            == 0
        )


def test_a_csv_column_named_券码_is_recognised(db: Database, workspace_id: int, tmp_path: Path) -> None:
    phone = next_phone()
    _template_id, code = _coupon(db, workspace_id, phone)
    path = tmp_path / "orders.csv"
    path.write_text(
        f"订单号,手机号,订单金额,实付金额,下单时间,券码\nCR-1,{phone},150.00,130.00,2026-11-30 12:00,{code}\n",
        encoding="utf-8",
    )
    job = ingest.import_file(
        db, workspace_id=workspace_id, kind="orders", path=path, reject_file=tmp_path / "rejects.csv"
    )
    assert job.status == "done", job.error
    with db.reader() as session:
        [redemption] = session.scalars(select(CouponRedemption).where(CouponRedemption.order_ref == "CR-1"))
        assert redemption.order_amount_cents == 15000 and redemption.workspace_id == workspace_id
