"""Managing tags: rename and delete (each audited; a deletion takes the tag off everyone with one
tag.removed each, only for the count confirmed, never under a segment that names the tag), counts per
tag and source, and tagging from an uploaded CSV list with its per-row rejects; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from siyu.auth.models import Role
from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import Conflict, PermissionDenied, ValidationFailed
from siyu.segments import service as segments
from siyu.tags import service as tags
from siyu.tags.models import CustomerTag, Tag, TagGroup
from tests.factories import make_customer, make_member, make_tag


def _audit(db: Database, workspace_id: int, action: str) -> list[AuditEntry]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.workspace_id == workspace_id, AuditEntry.action == action)
            )
        )


def test_rename_keeps_carriers_and_refuses_a_taken_name(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id).actor
        vip = make_tag(session, actor=actor, name="VIP", group="等级")
        make_tag(session, actor=actor, name="普通", group="等级")
        customer = make_customer(session, workspace_id=workspace_id)
        tags.tag_customer(session, actor=actor, customer_id=customer.id, tag_id=vip.id)
    with db.transaction() as session:
        tags.rename_tag(session, actor=actor, tag_id=vip.id, name="  超级  VIP ")
        tags.rename_group(session, actor=actor, group_id=vip.group_id, name="会员等级")
    with db.reader() as session:
        [carried] = tags.customer_tags(session, actor=actor, customer_id=customer.id)
        assert (carried.group, carried.name) == ("会员等级", "超级 VIP")
    [renamed] = _audit(db, workspace_id, "tag.renamed")
    assert renamed.detail == {"from": "VIP", "to": "超级 VIP"}
    assert _audit(db, workspace_id, "tag_group.renamed")[0].detail == {"from": "等级", "to": "会员等级"}
    with db.transaction() as session, pytest.raises(Conflict, match="exists already"):
        tags.rename_tag(session, actor=actor, tag_id=vip.id, name="普通")
    with db.transaction() as session, pytest.raises(ValidationFailed, match="'/'"):
        tags.rename_tag(session, actor=actor, tag_id=vip.id, name="a/b")


def test_a_tag_a_segment_names_cannot_be_renamed_or_deleted(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id).actor
        vip = make_tag(session, actor=actor, name="VIP", group="等级")
        other = make_tag(session, actor=actor, name="新客", group="来源")
        segments.create_segment(session, actor=actor, name="贵宾", rule='tag("等级/VIP")')
        ruled = segments.create_segment(session, actor=actor, name="有手机", rule="has(phone)")
        segments.set_rule_tag(session, actor=actor, segment_id=ruled.id, tag_id=other.id)
    with db.reader() as session:
        assert segments.tag_references(session, workspace_id=workspace_id, tag_ids=[vip.id]) == ["贵宾"]
        assert segments.tag_references(session, workspace_id=workspace_id, tag_ids=[other.id]) == ["有手机"]
        named_by = segments.tag_references(session, workspace_id=workspace_id, tag_ids=[vip.id])
    with db.transaction() as session, pytest.raises(Conflict, match="贵宾"):
        tags.rename_tag(session, actor=actor, tag_id=vip.id, name="VVIP", named_by=named_by)
    with db.transaction() as session, pytest.raises(Conflict, match="贵宾"):
        tags.delete_tag(session, actor=actor, tag_id=vip.id, named_by=named_by)


def test_delete_takes_the_tag_off_everyone_for_the_confirmed_count(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        operator = make_member(session, workspace_id=workspace_id, role=Role.OPERATOR).actor
        doomed = make_tag(session, actor=owner, name="旧标签", group="旧组")
        kept = make_tag(session, actor=owner, name="留下", group="旧组")
        people = [make_customer(session, workspace_id=workspace_id) for _ in range(3)]
        tags.tag_customers(session, actor=owner, tag_id=doomed.id, customer_ids=[c.id for c in people])
        tags.tag_customer(session, actor=owner, customer_id=people[0].id, tag_id=kept.id)
        assert tags.carriers_count(session, actor=owner, tag_id=doomed.id) == 3
        assert tags.carriers_count(session, actor=owner, group_id=doomed.group_id) == 3
    with db.transaction() as session, pytest.raises(PermissionDenied):
        tags.delete_tag(session, actor=operator, tag_id=doomed.id)
    with db.transaction() as session, pytest.raises(Conflict, match="3 customers carry it now, not the 2"):
        tags.delete_tag(session, actor=owner, tag_id=doomed.id, expected_customers=2)
    with db.transaction() as session:
        assert tags.delete_tag(session, actor=owner, tag_id=doomed.id, expected_customers=3) == 3
    with db.reader() as session:
        assert session.get(Tag, doomed.id) is None
        assert (
            session.scalar(
                select(func.count()).select_from(CustomerTag).where(CustomerTag.tag_id == doomed.id)
            )
            == 0
        )
        removed = session.scalars(
            select(DomainEvent.customer_id).where(
                DomainEvent.workspace_id == workspace_id, DomainEvent.type == "tag.removed"
            )
        ).all()
        assert sorted(removed) == sorted(c.id for c in people)
    [entry] = _audit(db, workspace_id, "tag.deleted")
    assert entry.detail == {"group": "旧组", "name": "旧标签", "customers": 3}
    with db.transaction() as session:
        assert tags.delete_group(session, actor=owner, group_id=kept.group_id, expected_customers=1) == 1
    with db.reader() as session:
        assert session.get(TagGroup, kept.group_id) is None
    assert _audit(db, workspace_id, "tag_group.deleted")[0].detail["tags"] == ["留下"]


def test_counts_per_tag_and_source_only_of_visible_customers(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        staff = make_member(session, workspace_id=workspace_id, role=Role.STAFF).actor
        tag = make_tag(session, actor=owner)
        mine = make_customer(session, workspace_id=workspace_id, owner_user_id=staff.user_id)
        make_customer(session, workspace_id=workspace_id, phone="+8613700003333")
        tags.tag_customer(session, actor=owner, customer_id=mine.id, tag_id=tag.id)
        tags.tag_customers_by_identity(
            session, actor=owner, tag_id=tag.id, kind="phone", values=["13700003333"]
        )
    with db.reader() as session:
        counts = tags.tag_counts(session, actor=owner)[tag.id]
        assert (counts.customers, counts.by_source) == (2, {"manual": 1, "import": 1})
        assert tags.tag_counts(session, actor=staff)[tag.id].by_source == {"manual": 1}


def test_an_uploaded_list_tags_whom_it_names_and_rejects_each_other_row(
    db: Database, workspace_id: int
) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id).actor
        tag = make_tag(session, actor=actor)
        known = make_customer(session, workspace_id=workspace_id, phone="+8613800001111")
        also = make_customer(session, workspace_id=workspace_id, phone="+8613800002222")
    # rows: 1 a spelling of a known phone, 2 empty, 3 nobody's, 4 the first phone spelled otherwise,
    # 5 the second known phone, 6 row 3 again
    content = "姓名,手机号\n甲,138 0000 1111\n乙,\n丙,13999999999\n丁,13800001111\n戊,+86 138-0000-2222\n己,13999999999\n"
    with db.transaction() as session:
        outcome = tags.tag_customers_by_list(
            session,
            actor=actor,
            tag_id=tag.id,
            kind="phone",
            content=content.encode("gb18030"),
            filename="名单.csv",
        )
    assert (outcome.result.changed, outcome.rows) == (2, 4)
    assert [(r.row, r.code) for r in outcome.rejects] == [(2, "empty"), (3, "not_found"), (6, "repeated")]
    with db.reader() as session:
        rows = session.execute(
            select(CustomerTag.customer_id, CustomerTag.source, CustomerTag.source_ref).where(
                CustomerTag.tag_id == tag.id
            )
        ).all()
    assert sorted(rows) == sorted([(known.id, "import", "名单.csv"), (also.id, "import", "名单.csv")])
    # the same list untags; a file without the kind's column says which columns it has
    with db.transaction() as session:
        undone = tags.tag_customers_by_list(
            session, actor=actor, tag_id=tag.id, kind="phone", content=content, remove=True
        )
    assert undone.result.changed == 2
    with db.transaction() as session, pytest.raises(ValidationFailed, match="no column is headed 'phone'"):
        tags.tag_customers_by_list(session, actor=actor, tag_id=tag.id, kind="phone", content="a,b\n1,2\n")
