"""Loading validated batches: identity resolution, idempotent order upserts, events, customer profiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.channels.models import Channel, Store
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.customers.models import Consent, Customer, CustomerRollup, Identity, IdentityReview, MergeLog
from siyu.events.models import CustomerEvent
from siyu.ingest.loader import load_batch
from siyu.ingest.schemas import FIELDS_BY_KIND, ImportKind, LoadResult, Reject, ValidatedBatch
from siyu.orders.models import Order, OrderLine

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def batch(kind: ImportKind, rows: list[dict[str, Any]]) -> ValidatedBatch:
    """A validated batch as validation would hand it over: canonical columns with their dtypes."""
    fields = dict(FIELDS_BY_KIND[kind])
    extra = sorted({k for r in rows for k in r} - set(fields) - {"row_number"})
    schema: dict[str, Any] = {"row_number": pl.Int64, **fields, **{k: pl.Utf8 for k in extra}}
    data = [{"row_number": i + 2, **r} for i, r in enumerate(rows)]
    frame = pl.DataFrame(data, schema=schema, orient="row") if data else pl.DataFrame(schema=schema)
    return ValidatedBatch(kind=kind, rows=frame, total_rows=len(rows))


def order(ext: str, phone: str | None = "13966661234", paid: int = 1000, **kw: Any) -> dict[str, Any]:
    return {"external_id": ext, "phone": phone, "paid_cents": paid, "placed_at": T0, "status": "paid", **kw}


def load(db: Database, workspace_id: int, b: ValidatedBatch, **kw: Any) -> tuple[LoadResult, list[Reject]]:
    with db.transaction() as session:
        return load_batch(session, workspace_id=workspace_id, batch=b, **kw)


def count(session: Session, model: Any, workspace_id: int) -> int:
    return int(
        session.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id))
    )


def counts(db: Database, workspace_id: int) -> dict[str, int]:
    models = {
        "customer": Customer,
        "identity": Identity,
        "order": Order,
        "line": OrderLine,
        "event": CustomerEvent,
        "domain_event": DomainEvent,
        "consent": Consent,
        "rollup": CustomerRollup,
        "merge": MergeLog,
        "review": IdentityReview,
    }
    with db.reader() as session:
        return {name: count(session, model, workspace_id) for name, model in models.items()}


def add_channel(db: Database, workspace_id: int, key: str = "douyin") -> int:
    with db.transaction() as session:
        channel = Channel(workspace_id=workspace_id, key=key, name=key, source_type="douyin", aliases="")
        session.add(channel)
        session.flush()
        return channel.id


def test_orders_create_customers_and_attach_by_identity(db: Database, workspace_id: int) -> None:
    result, rejects = load(
        db,
        workspace_id,
        batch(
            ImportKind.ORDERS,
            [
                order("A1", phone="+8613966661234", paid=1000),
                order("A2", phone="+8613966661234", paid=3000, placed_at=T0 + timedelta(days=2)),
                order("B1", phone="+8613700001111", paid=500),
                order("N1", phone=None, paid=200),
            ],
        ),
    )
    assert rejects == []
    assert (result.inserted, result.updated, result.unchanged, result.customers_created) == (4, 0, 0, 2)
    with db.reader() as session:
        owners = {
            ext: cid
            for ext, cid in session.execute(
                select(Order.external_id, Order.customer_id).where(Order.workspace_id == workspace_id)
            )
        }
        assert owners["A1"] == owners["A2"] != owners["B1"]
        assert owners["N1"] is None
        rollup = session.get(CustomerRollup, owners["A1"])
        assert rollup is not None
        assert (rollup.order_count, rollup.net_revenue_cents, rollup.avg_order_value_cents) == (2, 4000, 2000)
        assert rollup.first_order_at == T0 and rollup.last_order_at == T0 + timedelta(days=2)
        customer = session.get(Customer, owners["A1"])
        assert customer is not None and customer.created_at == T0
        types = sorted(
            session.scalars(select(DomainEvent.type).where(DomainEvent.workspace_id == workspace_id))
        )
    assert types.count("order.placed") == 4 and types.count("customer.created") == 2


def test_reimport_changes_nothing_and_later_row_updates(db: Database, workspace_id: int) -> None:
    rows = [
        order("A1", sku="T1", product_name="Tea", category="tea", quantity=2, unit_price_cents=500),
        order("A1", sku="C1", product_name="Cake", category="cake", quantity=1, unit_price_cents=800),
        order("A2", wechat_unionid="u-1", paid=700),
    ]
    load(db, workspace_id, batch(ImportKind.ORDERS, rows))
    before = counts(db, workspace_id)
    with db.reader() as session:
        stamps = sorted(session.scalars(select(Order.updated_at).where(Order.workspace_id == workspace_id)))
    result, _ = load(db, workspace_id, batch(ImportKind.ORDERS, rows))
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 2)
    assert counts(db, workspace_id) == before
    with db.reader() as session:
        assert stamps == sorted(
            session.scalars(select(Order.updated_at).where(Order.workspace_id == workspace_id))
        )

    refund = [order("A2", wechat_unionid="u-1", paid=700, refunded_cents=700, status="refunded")]
    result, _ = load(db, workspace_id, batch(ImportKind.ORDERS, refund))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)
    with db.reader() as session:
        a2 = session.scalar(
            select(Order).where(Order.workspace_id == workspace_id, Order.external_id == "A2")
        )
        assert a2 is not None and a2.status == "refunded" and a2.refunded_cents == 700
        rollup = session.get(CustomerRollup, a2.customer_id)
        assert rollup is not None
        assert (rollup.order_count, rollup.gross_revenue_cents, rollup.refunded_cents) == (1, 1700, 700)
        assert rollup.net_revenue_cents == 1000
        assert rollup.categories == ["cake", "tea"]
        refunded = session.scalar(
            select(func.count())
            .select_from(DomainEvent)
            .where(DomainEvent.workspace_id == workspace_id, DomainEvent.type == "order.refunded")
        )
        assert refunded == 1
        lines = sorted(session.scalars(select(OrderLine.sku).where(OrderLine.workspace_id == workspace_id)))
        assert lines == ["C1", "T1"]

    # new line data replaces the order's lines
    load(db, workspace_id, batch(ImportKind.ORDERS, [order("A1", sku="M1", category="milk", quantity=1)]))
    with db.reader() as session:
        lines = sorted(session.scalars(select(OrderLine.sku).where(OrderLine.workspace_id == workspace_id)))
        assert lines == ["M1"]


def test_rows_sharing_keys_in_one_batch_resolve_transitively(db: Database, workspace_id: int) -> None:
    rows = [
        order("O1", phone="+8613966661234"),
        order("O2", phone=None, email="a@siyu.dev"),
        order("O3", phone="+8613966661234", email="a@siyu.dev", wechat_unionid="ox-U1"),
    ]
    result, _ = load(db, workspace_id, batch(ImportKind.ORDERS, rows))
    assert result.customers_created == 1
    assert counts(db, workspace_id)["identity"] == 3


def test_row_linking_two_customers_merges_them(db: Database, workspace_id: int) -> None:
    load(db, workspace_id, batch(ImportKind.ORDERS, [order("O1", phone="+8613966661234")]))
    load(
        db,
        workspace_id,
        batch(
            ImportKind.ORDERS, [order("O2", phone=None, wechat_unionid="ox-U2", placed_at=T0 + timedelta(1))]
        ),
    )
    result, _ = load(
        db,
        workspace_id,
        batch(ImportKind.ORDERS, [order("O3", phone="+8613966661234", wechat_unionid="ox-U2", paid=50)]),
    )
    assert result.customers_merged == 1 and result.customers_created == 0
    with db.reader() as session:
        owners = set(session.scalars(select(Order.customer_id).where(Order.workspace_id == workspace_id)))
        assert len(owners) == 1
        (survivor,) = owners
        log = session.scalar(select(MergeLog).where(MergeLog.workspace_id == workspace_id))
        assert log is not None and log.survivor_id == survivor
        assert len(log.moved["order_ids"]) == 1 and len(log.moved["identity_ids"]) == 1
        rollup = session.get(CustomerRollup, survivor)
        assert rollup is not None and rollup.order_count == 3
        assert session.get(CustomerRollup, log.merged_id) is None


def test_conflicting_single_valued_keys_are_flagged_not_merged(db: Database, workspace_id: int) -> None:
    load(
        db,
        workspace_id,
        batch(ImportKind.ORDERS, [order("O1", phone="+8613966661234", wechat_unionid="ox-X1")]),
    )
    load(db, workspace_id, batch(ImportKind.ORDERS, [order("O2", phone=None, wechat_unionid="ox-Y1")]))
    rows = [order("O3", phone="+8613966661234", wechat_unionid="ox-Y1")]
    result, _ = load(db, workspace_id, batch(ImportKind.ORDERS, rows))
    assert result.customers_merged == 0 and result.conflicts_flagged == 1
    with db.reader() as session:
        by_ext = {
            ext: cid
            for ext, cid in session.execute(
                select(Order.external_id, Order.customer_id).where(Order.workspace_id == workspace_id)
            )
        }
        # the row goes with its first key in priority order: the unionid
        assert by_ext["O3"] == by_ext["O2"] != by_ext["O1"]
        review = session.scalar(select(IdentityReview).where(IdentityReview.workspace_id == workspace_id))
        assert review is not None and review.status == "open"
        assert {review.customer_a_id, review.customer_b_id} == {by_ext["O1"], by_ext["O2"]}
    before = counts(db, workspace_id)
    load(db, workspace_id, batch(ImportKind.ORDERS, rows))
    assert counts(db, workspace_id) == before


def test_junk_and_denylisted_values_never_link(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        from siyu.workspaces.models import Workspace

        ws = session.get(Workspace, workspace_id)
        assert ws is not None
        ws.identity_denylist = ["+8613511112222"]
    rows = [
        order("J1", phone="13800138000"),
        order("J2", phone="13800138000"),
        order("J3", phone="+8613511112222"),
        order("J4", phone="+8613511112222"),
        order("J5", phone=None, email="null"),
    ]
    result, _ = load(db, workspace_id, batch(ImportKind.ORDERS, rows))
    assert result.customers_created == 0
    assert counts(db, workspace_id)["identity"] == 0


def test_unknown_channel_and_store_rows_are_rejected(db: Database, workspace_id: int) -> None:
    channel_id = add_channel(db, workspace_id, "douyin")
    with db.transaction() as session:
        session.add(Store(workspace_id=workspace_id, code="SH01", name="Shanghai 1"))
    rows = [
        order("C1", channel="douyin", store="SH01"),
        order("C2", channel="nowhere"),
        order("C3", store="XX"),
    ]
    result, rejects = load(db, workspace_id, batch(ImportKind.ORDERS, rows))
    assert result.inserted == 1
    assert [(r.row_number, r.column) for r in rejects] == [(3, "channel"), (4, "store")]
    with db.reader() as session:
        o = session.scalar(select(Order).where(Order.workspace_id == workspace_id))
        assert o is not None and o.channel_id == channel_id and o.store_id is not None
        rollup = session.get(CustomerRollup, o.customer_id)
        assert rollup is not None and rollup.first_channel_id == channel_id


def test_events_dedupe_by_external_id_and_content(db: Database, workspace_id: int) -> None:
    rows = [
        {"type": "page_view", "occurred_at": T0, "phone": "+8613966661234", "properties": '{"b": 1, "a": 2}'},
        {"type": "page_view", "occurred_at": T0, "phone": "+8613966661234", "properties": '{"a": 2, "b": 1}'},
        {"type": "coupon", "occurred_at": T0, "external_id": "E1", "phone": "+8613966661234"},
        {"type": "coupon", "occurred_at": T0 + timedelta(1), "external_id": "E1", "phone": "+8613966661234"},
    ]
    result, _ = load(db, workspace_id, batch(ImportKind.EVENTS, rows))
    assert (result.inserted, result.unchanged) == (2, 2)
    before = counts(db, workspace_id)
    result, _ = load(db, workspace_id, batch(ImportKind.EVENTS, rows))
    assert (result.inserted, result.unchanged) == (0, 4)
    assert counts(db, workspace_id) == before
    with db.reader() as session:
        rollup = session.scalar(select(CustomerRollup).where(CustomerRollup.workspace_id == workspace_id))
        assert rollup is not None and rollup.last_event_at == T0
        recorded = session.scalar(
            select(func.count())
            .select_from(DomainEvent)
            .where(DomainEvent.workspace_id == workspace_id, DomainEvent.type == "event.recorded")
        )
        assert recorded == 2


def test_customers_profile_attributes_consent_and_owner(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        user = auth.create_user(
            session, email=f"owner{workspace_id}@siyu.dev", password="password1", display_name="O"
        )
        auth.add_member(session, workspace_id=workspace_id, user_id=user.id, role=Role.STAFF)
        owner_id = user.id
    channel_id = add_channel(db, workspace_id, "store")
    rows = [
        {
            "phone": "+8613966661234",
            "name": "Li",
            "city": "Shanghai",
            "attr:level": "gold",
            "consent:sms": "granted",
        },
        {
            "phone": "+8613966661234",
            "city": "Hangzhou",
            "channel": "store",
            "owner_email": f"OWNER{workspace_id}@siyu.dev",
        },
        {"phone": "+8613700001111", "name": "Wang", "owner_email": "stranger@siyu.dev"},
    ]
    result, rejects = load(db, workspace_id, batch(ImportKind.CUSTOMERS, rows))
    assert [(r.row_number, r.column) for r in rejects] == [(4, "owner_email")]
    assert result.inserted == 1 and result.customers_created == 1
    with db.reader() as session:
        c = session.scalar(select(Customer).where(Customer.workspace_id == workspace_id))
        assert c is not None
        assert (c.name, c.city, c.owner_user_id, c.first_channel_id) == (
            "Li",
            "Hangzhou",
            owner_id,
            channel_id,
        )
        assert c.attributes == {"level": "gold"}
    before = counts(db, workspace_id)
    result, _ = load(db, workspace_id, batch(ImportKind.CUSTOMERS, rows[:2]))
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 1)
    assert counts(db, workspace_id) == before

    later = [{"phone": "+8613966661234", "name": "Li Lei", "attr:vip": "yes", "consent:sms": "withdrawn"}]
    result, _ = load(db, workspace_id, batch(ImportKind.CUSTOMERS, later))
    assert result.updated == 1
    with db.reader() as session:
        c = session.scalar(select(Customer).where(Customer.workspace_id == workspace_id))
        assert c is not None and c.name == "Li Lei" and c.city == "Hangzhou"
        assert c.attributes == {"level": "gold", "vip": "yes"}
        statuses = list(
            session.scalars(
                select(Consent.status).where(Consent.workspace_id == workspace_id).order_by(Consent.id)
            )
        )
        assert statuses == ["granted", "withdrawn"]


def test_chunks_keep_lines_of_one_order_together(db: Database, workspace_id: int) -> None:
    rows = [order(f"K{i // 3}", phone=f"+8613966661{i // 6:03d}", sku=f"S{i}", quantity=1) for i in range(30)]
    seen: list[tuple[int, int]] = []
    result, _ = load(
        db,
        workspace_id,
        batch(ImportKind.ORDERS, rows),
        chunk_rows=7,
        progress=lambda a, b: seen.append((a, b)),
    )
    assert result.inserted == 10 and result.customers_created == 5
    assert seen[-1] == (30, 30) and len(seen) > 1
    with db.reader() as session:
        assert count(session, OrderLine, workspace_id) == 30


def test_one_key_rows_follow_merges_made_by_earlier_chunks(db: Database, workspace_id: int) -> None:
    a, b, c = "+8613966662001", "+8613966662002", "+8613966662003"
    rows = [
        order("C1", phone=a),
        order("C2", phone=b),
        order("C3", phone=c),
        # second chunk: one record links a and b (a merge); c is known from the first chunk
        order("C4", phone=a, wechat_unionid="ox-C"),
        order("C5", phone=b, wechat_unionid="ox-C"),
        order("C6", phone=c),
        # third chunk: one-key records of all three phones
        order("C7", phone=a),
        order("C8", phone=b),
        order("C9", phone=c),
    ]
    result, _ = load(db, workspace_id, batch(ImportKind.ORDERS, rows), chunk_rows=3)
    assert (result.customers_created, result.customers_merged) == (3, 1)
    with db.reader() as session:
        owner = dict(
            session.execute(
                select(Order.external_id, Order.customer_id).where(Order.workspace_id == workspace_id)
            ).all()
        )
        log = session.scalar(select(MergeLog).where(MergeLog.workspace_id == workspace_id))
        assert log is not None
        linked = {owner[e] for e in ("C1", "C2", "C4", "C5", "C7", "C8")}
        assert linked == {log.survivor_id}
        assert owner["C3"] == owner["C6"] == owner["C9"] != log.survivor_id
        survivor = session.get(CustomerRollup, log.survivor_id)
        assert survivor is not None and survivor.order_count == 6
        assert session.get(CustomerRollup, log.merged_id) is None
        assert count(session, Identity, workspace_id) == 4
