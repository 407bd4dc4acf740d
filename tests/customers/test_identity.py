"""Merge, unmerge and conflict review: exactly what moved goes back; audit rows and domain events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import Conflict
from siyu.customers import identity
from siyu.customers.models import Customer, CustomerRollup, Identity, IdentityReview
from siyu.ingest.schemas import ImportKind
from siyu.orders.models import Order
from tests.ingest.test_loader import T0, batch, load, order


def owners(db: Database, workspace_id: int) -> dict[str, int | None]:
    with db.reader() as session:
        rows = session.execute(
            select(Order.external_id, Order.customer_id).where(Order.workspace_id == workspace_id)
        )
        return {ext: cid for ext, cid in rows}


def identities(db: Database, workspace_id: int) -> dict[str, int]:
    with db.reader() as session:
        rows = session.execute(
            select(Identity.value, Identity.customer_id).where(Identity.workspace_id == workspace_id)
        )
        return {value: cid for value, cid in rows}


def test_merge_then_unmerge_restores_exactly(db: Database, workspace_id: int) -> None:
    load(db, workspace_id, batch(ImportKind.ORDERS, [order("A1", phone="+8613966661234", paid=100)]))
    load(
        db,
        workspace_id,
        batch(
            ImportKind.ORDERS, [order("B1", phone="+8613700001111", paid=900, placed_at=T0 + timedelta(1))]
        ),
    )
    load(
        db,
        workspace_id,
        batch(ImportKind.CUSTOMERS, [{"phone": "+8613700001111", "name": "Wang", "city": "Hz"}]),
    )
    before_orders, before_ids = owners(db, workspace_id), identities(db, workspace_id)
    a, b = before_orders["A1"], before_orders["B1"]
    assert a is not None and b is not None and a != b

    with db.transaction() as session:
        log = identity.merge_customers(
            session,
            workspace_id=workspace_id,
            survivor_id=a,
            merged_id=b,
            reason="same person",
            actor_user_id=None,
        )
        log_id = log.id
    assert set(owners(db, workspace_id).values()) == {a}
    with db.reader() as session:
        survivor = session.get(Customer, a)
        assert survivor is not None and (survivor.name, survivor.city) == ("Wang", "Hz")
        merged = session.get(Customer, b)
        assert merged is not None and merged.merged_into_id == a
        rollup = session.get(CustomerRollup, a)
        assert rollup is not None and (rollup.order_count, rollup.net_revenue_cents) == (2, 1000)
        assert session.get(CustomerRollup, b) is None
        with pytest.raises(Conflict):
            identity.merge_customers(
                session,
                workspace_id=workspace_id,
                survivor_id=a,
                merged_id=b,
                reason="again",
                actor_user_id=None,
            )

    with db.transaction() as session:
        identity.unmerge(session, workspace_id=workspace_id, merge_log_id=log_id, actor_user_id=None)
    assert owners(db, workspace_id) == before_orders
    assert identities(db, workspace_id) == before_ids
    with db.reader() as session:
        survivor = session.get(Customer, a)
        assert survivor is not None and (survivor.name, survivor.city) == (None, None)
        merged = session.get(Customer, b)
        assert merged is not None and merged.merged_into_id is None and merged.name == "Wang"
        rollup_b = session.get(CustomerRollup, b)
        assert rollup_b is not None and rollup_b.net_revenue_cents == 900
        actions = list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.workspace_id == workspace_id)
                .order_by(AuditEntry.id)
            )
        )
        assert actions == ["customer.merged", "customer.unmerged"]
        types = set(session.scalars(select(DomainEvent.type).where(DomainEvent.workspace_id == workspace_id)))
        assert {"identity.merged", "identity.unmerged"} <= types
        with pytest.raises(Conflict):
            identity.unmerge(session, workspace_id=workspace_id, merge_log_id=log_id, actor_user_id=None)


def test_review_dismiss_and_merge(db: Database, workspace_id: int) -> None:
    load(
        db,
        workspace_id,
        batch(ImportKind.ORDERS, [order("O1", phone="+8613966661234", wechat_unionid="ox-X1")]),
    )
    load(db, workspace_id, batch(ImportKind.ORDERS, [order("O2", phone=None, wechat_unionid="ox-Y1")]))
    load(
        db,
        workspace_id,
        batch(ImportKind.ORDERS, [order("O3", phone="+8613966661234", wechat_unionid="ox-Y1")]),
    )
    with db.reader() as session:
        (review,) = identity.list_reviews(session, workspace_id=workspace_id)
        conflicts = session.scalar(
            select(func.count())
            .select_from(DomainEvent)
            .where(DomainEvent.workspace_id == workspace_id, DomainEvent.type == "identity.conflict_flagged")
        )
        assert conflicts == 2
    with db.transaction() as session:
        done = identity.resolve_review(
            session, workspace_id=workspace_id, review_id=review.id, decision="merge", actor_user_id=None
        )
        assert done.status == "merged"
    assert len(set(owners(db, workspace_id).values())) == 1
    with db.reader() as session:
        assert identity.list_reviews(session, workspace_id=workspace_id) == []
        assert session.scalar(select(IdentityReview.status).where(IdentityReview.id == review.id)) == "merged"
        (log,) = identity.list_merges(session, workspace_id=workspace_id)
        assert log.reason.startswith(f"identity review {review.id}")
