"""PIPL export and erasure of one person: what is in the export, what erasure removes and keeps."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from siyu.auth.models import Role
from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import Conflict, NotFound, PermissionDenied
from siyu.customers import privacy, rollups
from siyu.customers import service as customers
from siyu.customers.models import Consent, Customer, CustomerRollup, Identity, MergeLog
from siyu.events.models import CustomerEvent
from siyu.orders.models import Order
from tests.factories import make_customer, make_event, make_order, member


def _person(db: Database, workspace_id: int) -> tuple[int, int]:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = make_customer(
            session,
            workspace_id=workspace_id,
            name="赵六",
            phone="+8613911112222",
            identities={"email": "zhao@example.com"},
            city="成都",
            attributes={"skin": "dry"},
        )
        order = make_order(session, workspace_id=workspace_id, customer_id=customer.id, paid_cents=5000)
        make_event(session, workspace_id=workspace_id, customer_id=customer.id, properties={"page": "/cart"})
    with db.transaction() as session:
        customers.record_consent(
            session,
            actor=owner.actor,
            customer_id=customer.id,
            contact_channel="sms",
            purpose="marketing",
            status="granted",
        )
    return customer.id, order.id


def _audit_actions(db: Database, workspace_id: int) -> list[str]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.workspace_id == workspace_id)
                .order_by(AuditEntry.id)
            )
        )


def test_export_holds_everything_and_is_audited(db: Database, workspace_id: int) -> None:
    customer_id, order_id = _person(db, workspace_id)
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        document = privacy.export_person(session, actor=analyst.actor, customer_id=customer_id)
    json.dumps(document)  # JSON-ready
    assert document["profile"]["name"] == "赵六" and document["profile"]["attributes"] == {"skin": "dry"}
    assert sorted((i["kind"], i["value"]) for i in document["identities"]) == [
        ("email", "zhao@example.com"),
        ("phone", "+8613911112222"),
    ]
    assert [o["id"] for o in document["orders"]] == [order_id]
    assert document["orders"][0]["lines"][0]["sku"] == "MT-01"
    assert [e["properties"] for e in document["events"]] == [{"page": "/cart"}]
    assert [(c["contact_channel"], c["status"]) for c in document["consents"]] == [("sms", "granted")]
    assert "customer.exported" in _audit_actions(db, workspace_id)


def test_staff_may_not_export(db: Database, workspace_id: int) -> None:
    customer_id, _ = _person(db, workspace_id)
    staff = member(db, workspace_id, Role.STAFF)
    with db.transaction() as session, pytest.raises(PermissionDenied):
        privacy.export_person(session, actor=staff.actor, customer_id=customer_id)


def test_erase_removes_personal_data_and_keeps_anonymous_orders(db: Database, workspace_id: int) -> None:
    customer_id, order_id = _person(db, workspace_id)
    owner = member(db, workspace_id)
    with db.transaction() as session:
        counts = privacy.erase_person(session, actor=owner.actor, customer_id=customer_id)
    assert counts == {"identities": 2, "consents": 1, "events": 1, "tags": 0, "orders_kept": 1}
    with db.reader() as session:
        stub = session.get(Customer, customer_id)
        assert stub is not None and stub.erased_at is not None
        assert (stub.name, stub.city, stub.attributes) == (None, None, {})
        assert (
            session.scalar(
                select(func.count()).select_from(Identity).where(Identity.customer_id == customer_id)
            )
            == 0
        )
        assert (
            session.scalar(
                select(func.count()).select_from(Consent).where(Consent.customer_id == customer_id)
            )
            == 0
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(CustomerEvent)
                .where(CustomerEvent.customer_id == customer_id)
            )
            == 0
        )
        order = session.get(Order, order_id)
        assert order is not None and order.customer_id == customer_id and order.paid_cents == 5000
        rollup = session.get(CustomerRollup, customer_id)
        assert rollup is not None and rollup.net_revenue_cents == 5000 and rollup.last_event_at is None
        kept = (rollup.order_count, rollup.net_revenue_cents, rollup.first_order_at, rollup.last_event_at)
        types = list(session.scalars(select(DomainEvent.type).where(DomainEvent.customer_id == customer_id)))
        assert "customer.erased" in types
        assert customers.count_customers(session, workspace_id=workspace_id) == 0
        with pytest.raises(NotFound):
            customers.lookup_by_identity(session, actor=owner.actor, kind="phone", value="13911112222")
    assert "customer.erased" in _audit_actions(db, workspace_id)
    with db.transaction() as session:  # a full rebuild from raw data agrees with what erasure left
        rollups.rebuild_rollups(session, workspace_id=workspace_id)
    with db.reader() as session:
        rebuilt = session.get(CustomerRollup, customer_id)
        assert rebuilt is not None
        assert (
            rebuilt.order_count,
            rebuilt.net_revenue_cents,
            rebuilt.first_order_at,
            rebuilt.last_event_at,
        ) == kept
    with db.transaction() as session, pytest.raises(Conflict):
        privacy.erase_person(session, actor=owner.actor, customer_id=customer_id)


def test_erase_refuses_merged_record_and_cleans_records_merged_into_survivor(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        survivor = make_customer(session, workspace_id=workspace_id, name="A")
        merged = make_customer(session, workspace_id=workspace_id, name="A-old", phone="")
        merged.merged_into_id = survivor.id
        session.add(
            MergeLog(
                workspace_id=workspace_id,
                survivor_id=survivor.id,
                merged_id=merged.id,
                reason="same phone",
                moved={"identities": [{"kind": "phone", "value": "+8613900000001"}]},
            )
        )
    with db.transaction() as session, pytest.raises(Conflict) as raised:
        privacy.erase_person(session, actor=owner.actor, customer_id=merged.id)
    assert raised.value.hint is not None and str(survivor.id) in raised.value.hint
    with db.transaction() as session:
        privacy.erase_person(session, actor=owner.actor, customer_id=survivor.id)
    with db.reader() as session:
        old = session.get(Customer, merged.id)
        assert old is not None and old.name is None and old.erased_at is not None
        log = session.scalar(select(MergeLog).where(MergeLog.merged_id == merged.id))
        assert log is not None and "+8613900000001" not in json.dumps(log.moved)


def test_operator_may_not_erase(db: Database, workspace_id: int) -> None:
    customer_id, _ = _person(db, workspace_id)
    operator = member(db, workspace_id, Role.OPERATOR)
    with db.transaction() as session, pytest.raises(PermissionDenied):
        privacy.erase_person(session, actor=operator.actor, customer_id=customer_id)
