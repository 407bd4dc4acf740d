"""Saved segments: create / update / soft delete with their audit rows and domain events, names unique
also among deleted ones, rules that match everyone refused unless accepted, and explain's SQL runnable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from siyu.auth.models import Role
from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import Conflict, NotFound, PermissionDenied
from siyu.segments import service as segments
from siyu.segments.rules import RuleError
from tests.factories import make_customer, make_order, make_tag, member

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_create_update_delete_with_audit_and_events(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        make_tag(session, actor=owner, name="VIP")
        created = segments.create_segment(
            session,
            actor=owner,
            name=" 高价值 ",
            rule={"type": "field", "field": "order_count", "op": ">=", "value": 3},
        )
    assert (created.name, created.rule_text) == ("高价值", "order_count >= 3")
    with db.transaction() as session:
        updated = segments.update_segment(
            session,
            actor=owner,
            segment_id=created.id,
            name="高价值客",
            rule='order_count >= 3 and tag("VIP")',
        )
        unchanged = segments.update_segment(session, actor=owner, segment_id=created.id, rule=updated.rule)
    assert updated.rule == {
        "type": "and",
        "rules": [
            {"type": "field", "field": "order_count", "op": ">=", "value": 3},
            {"type": "tag", "tag": "VIP"},
        ],
    }
    assert unchanged.updated_at == updated.updated_at
    with db.transaction() as session:
        segments.delete_segment(session, actor=owner, segment_id=created.id)
    with db.reader() as session:
        assert segments.list_segments(session, workspace_id=workspace_id) == []
        [kept] = segments.list_segments(session, workspace_id=workspace_id, include_deleted=True)
        assert kept.deleted_at is not None
        with pytest.raises(NotFound):
            segments.get_segment(session, workspace_id=workspace_id, segment_id=created.id)
        types = list(
            session.scalars(
                select(DomainEvent.type)
                .where(DomainEvent.workspace_id == workspace_id)
                .order_by(DomainEvent.id)
            )
        )
        actions = list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.workspace_id == workspace_id, AuditEntry.target_type == "segment")
                .order_by(AuditEntry.id)
            )
        )
    assert types == ["segment.created", "segment.updated", "segment.deleted"]
    assert actions == types
    # a deleted segment keeps its name: a new one may not take it
    with db.transaction() as session, pytest.raises(Conflict, match="deleted"):
        segments.create_segment(session, actor=owner, name="高价值客", rule="order_count >= 1")


def test_refusals_write_nothing(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    analyst = member(db, workspace_id, Role.ANALYST).actor
    with db.transaction() as session, pytest.raises(RuleError, match="matches every customer") as caught:
        segments.create_segment(session, actor=owner, name="全部", rule="order_count >= 0")
    assert "accept_warnings" in (caught.value.hint or "")
    with db.transaction() as session, pytest.raises(PermissionDenied):
        segments.create_segment(session, actor=analyst, name="x", rule="has(phone)")
    with db.transaction() as session, pytest.raises(RuleError, match="no tag"):
        segments.create_segment(session, actor=owner, name="x", rule='tag("nope")')
    with db.reader() as session:
        assert segments.list_segments(session, workspace_id=workspace_id, include_deleted=True) == []
    with db.transaction() as session:
        everyone = segments.create_segment(
            session, actor=owner, name="全部", rule="order_count >= 0", accept_warnings=True
        )
        segments.create_segment(session, actor=owner, name="有手机", rule="has(phone)")
        with pytest.raises(Conflict):
            segments.update_segment(session, actor=owner, segment_id=everyone.id, name="有手机")
    with db.reader() as session:
        assert segments.count_segment_rule(session, actor=analyst, rule='segment("全部")').warnings == []


def test_explain_is_the_sql_that_runs(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        buyers = [make_customer(session, workspace_id=workspace_id) for _ in range(3)]
        for customer in buyers[:2]:
            make_order(
                session,
                workspace_id=workspace_id,
                customer_id=customer.id,
                placed_at=datetime(2026, 5, 20, tzinfo=UTC),
            )
        make_customer(session, workspace_id=workspace_id, attributes={"level": "gold"})
    rule = 'orders(within="30d").count >= 1 and has(phone) and not attr.level = "gold" and birthday = null'
    with db.reader() as session:
        explained = segments.explain(session, actor=owner, rule=rule, now=NOW)
        assert explained.dialect == session.get_bind().dialect.name
        assert explained.text == rule and explained.warnings == []
        ran = set(session.scalars(text(explained.sql)))
        assert ran == {c.id for c in buyers[:2]}
        assert segments.count_segment_rule(session, actor=owner, rule=explained.rule, now=NOW).count == 2


def test_a_segment_named_by_another_keeps_its_name(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        base = segments.create_segment(session, actor=owner, name="有手机", rule="has(phone)")
        segments.create_segment(
            session, actor=owner, name="有手机的买家", rule='segment("有手机") and order_count >= 1'
        )
    with db.transaction() as session, pytest.raises(Conflict, match="named in the rules of '有手机的买家'"):
        segments.update_segment(session, actor=owner, segment_id=base.id, name="手机")
    with db.transaction() as session:
        deleted = segments.delete_segment(session, actor=owner, segment_id=base.id)
    with db.reader() as session:
        detail = session.scalars(
            select(AuditEntry.detail).where(
                AuditEntry.action == "segment.deleted", AuditEntry.target_id == str(deleted.id)
            )
        ).one()
    assert detail["referred_to_by"] == ["有手机的买家"]
