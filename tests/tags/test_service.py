"""Tag verbs: definitions with unique names, tagging one customer or many (by id or by a list of phones),
each write with its audit row and one domain event per customer changed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from siyu.auth.models import Role
from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from siyu.customers import identity
from siyu.tags import service as tags
from siyu.tags.models import CustomerTag, TagSource
from siyu.workspaces import service as workspaces
from tests.factories import make_customer, make_member, make_tag, member


def _events(db: Database, workspace_id: int, type_: str) -> list[DomainEvent]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(DomainEvent)
                .where(DomainEvent.workspace_id == workspace_id, DomainEvent.type == type_)
                .order_by(DomainEvent.id)
            )
        )


def _audit_actions(db: Database, workspace_id: int) -> list[str]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.workspace_id == workspace_id, AuditEntry.target_type != "api_token")
                .order_by(AuditEntry.id)
            )
        )


def test_names_are_unique_per_group_and_workspace(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        level = tags.create_group(session, actor=owner, name=" 会员  等级 ")
        taste = tags.create_group(session, actor=owner, name="口味")
        vip = tags.create_tag(session, actor=owner, group_id=level.id, name="VIP")
        tags.create_tag(session, actor=owner, group_id=taste.id, name="VIP")  # another group: fine
    assert level.name == "会员 等级"
    with db.transaction() as session, pytest.raises(Conflict, match="exists already"):
        tags.create_tag(session, actor=owner, group_id=level.id, name="VIP")
    with db.transaction() as session, pytest.raises(Conflict):
        tags.create_group(session, actor=owner, name="口味")
    with db.transaction() as session, pytest.raises(ValidationFailed, match="'/'"):
        tags.create_tag(session, actor=owner, group_id=level.id, name="a/b")
    with db.transaction() as session, pytest.raises(ValidationFailed, match="empty"):
        tags.create_group(session, actor=owner, name="  ")
    with db.reader() as session:
        groups = tags.list_groups(session, workspace_id=workspace_id)
        assert [(g.name, [t.name for t in g.tags]) for g in groups] == [
            ("会员 等级", ["VIP"]),
            ("口味", ["VIP"]),
        ]
        assert (vip.id, "会员 等级", "VIP") in tags.tag_names(session, workspace_id=workspace_id)
    # a group of another workspace is not found from this one
    with db.transaction() as session:
        other = workspaces.create_workspace(session, slug=f"tags-other-{workspace_id}", name="O").id
        stranger = make_member(session, workspace_id=other).actor
        with pytest.raises(NotFound):
            tags.create_tag(session, actor=stranger, group_id=level.id, name="X")


def test_tag_and_untag_one_customer_with_source_audit_and_events(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        tag = make_tag(session, actor=owner, group="等级", name="VIP")
        customer = make_customer(session, workspace_id=workspace_id)
    with db.transaction() as session:
        assert tags.tag_customer(session, actor=owner, customer_id=customer.id, tag_id=tag.id) is True
    with db.transaction() as session:
        assert tags.tag_customer(session, actor=owner, customer_id=customer.id, tag_id=tag.id) is False
    with db.reader() as session:
        [carried] = tags.customer_tags(session, actor=owner, customer_id=customer.id)
    assert (carried.group, carried.name, carried.source, carried.actor_user_id) == (
        "等级",
        "VIP",
        TagSource.MANUAL,
        owner.user_id,
    )
    [added] = _events(db, workspace_id, "tag.added")
    assert added.customer_id == customer.id
    assert added.payload == {
        "tag_id": tag.id,
        "group": "等级",
        "tag": "VIP",
        "source": "manual",
        "source_ref": None,
    }

    with db.transaction() as session:
        assert tags.untag_customer(session, actor=owner, customer_id=customer.id, tag_id=tag.id) is True
    with db.transaction() as session:
        assert tags.untag_customer(session, actor=owner, customer_id=customer.id, tag_id=tag.id) is False
    with db.reader() as session:
        assert tags.customer_tags(session, actor=owner, customer_id=customer.id) == []
    [removed] = _events(db, workspace_id, "tag.removed")
    assert removed.customer_id == customer.id and removed.payload["source"] == "manual"
    assert _audit_actions(db, workspace_id) == [
        "tag_group.created",
        "tag.created",
        "tag.added",
        "tag.removed",
    ]


def test_bulk_tagging_by_ids_reports_what_it_could_not_see(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        tag = make_tag(session, actor=owner)
        a, b, c = (make_customer(session, workspace_id=workspace_id) for _ in range(3))
        gone = make_customer(session, workspace_id=workspace_id)
        identity.merge_customers(
            session,
            workspace_id=workspace_id,
            survivor_id=c.id,
            merged_id=gone.id,
            reason="t",
            actor_user_id=None,
        )
        other = workspaces.create_workspace(session, slug=f"bulk-other-{workspace_id}", name="O").id
        foreign = make_customer(session, workspace_id=other)
        tags.tag_customer(session, actor=owner, customer_id=a.id, tag_id=tag.id)
    with db.transaction() as session:
        result = tags.tag_customers(
            session, actor=owner, tag_id=tag.id, customer_ids=[a.id, b.id, c.id, gone.id, foreign.id, b.id]
        )
    assert (result.changed, result.unchanged) == (2, 1)
    assert result.not_found == sorted([str(gone.id), str(foreign.id)], key=int)
    assert sorted(e.customer_id for e in _events(db, workspace_id, "tag.added")) == sorted([a.id, b.id, c.id])
    with db.reader() as session:
        carried = set(session.scalars(select(CustomerTag.customer_id).where(CustomerTag.tag_id == tag.id)))
    assert carried == {a.id, b.id, c.id}

    with db.transaction() as session:
        result = tags.untag_customers(
            session, actor=owner, tag_id=tag.id, customer_ids=[a.id, b.id, foreign.id]
        )
    assert (result.changed, result.unchanged, result.not_found) == (2, 0, [str(foreign.id)])
    assert len(_events(db, workspace_id, "tag.removed")) == 2
    assert _audit_actions(db, workspace_id)[-2:] == ["tag.bulk_added", "tag.bulk_removed"]


def test_bulk_tagging_by_an_imported_list_of_phones(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        tag = make_tag(session, actor=owner)
        first = make_customer(session, workspace_id=workspace_id, phone="+8613911112222")
        second = make_customer(session, workspace_id=workspace_id, phone="+8613933334444")
        make_customer(session, workspace_id=workspace_id, phone="+8613955556666")
    with db.transaction() as session:
        result = tags.tag_customers_by_identity(
            session,
            actor=owner,
            tag_id=tag.id,
            kind="phone",
            values=["139 1111 2222", "+86 139-3333-4444", "13900000009", ""],
            source_ref="list.xlsx",
        )
    assert (result.changed, result.unchanged, result.not_found) == (2, 0, ["13900000009"])
    with db.reader() as session:
        rows = list(session.scalars(select(CustomerTag).where(CustomerTag.tag_id == tag.id)))
    assert {r.customer_id for r in rows} == {first.id, second.id}
    assert {(r.source, r.source_ref) for r in rows} == {("import", "list.xlsx")}
    with db.transaction() as session:
        result = tags.untag_customers_by_identity(
            session, actor=owner, tag_id=tag.id, kind="phone", values=["13911112222"]
        )
    assert result.changed == 1


def test_tagging_needs_write_and_writes_nothing_when_refused(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    analyst = member(db, workspace_id, Role.ANALYST).actor
    with db.transaction() as session:
        tag = make_tag(session, actor=owner)
        customer = make_customer(session, workspace_id=workspace_id)
    with db.transaction() as session, pytest.raises(PermissionDenied):
        tags.tag_customer(session, actor=analyst, customer_id=customer.id, tag_id=tag.id)
    with db.transaction() as session, pytest.raises(PermissionDenied):
        tags.create_group(session, actor=analyst, name="x")
    with db.transaction() as session, pytest.raises(NotFound):
        tags.tag_customers(session, actor=owner, tag_id=tag.id + 10_000, customer_ids=[customer.id])
    with db.transaction() as session, pytest.raises(ValidationFailed, match="unknown tag source"):
        tags.tag_customer(session, actor=owner, customer_id=customer.id, tag_id=tag.id, source="magic")
    with db.reader() as session:
        assert (
            session.scalar(select(func.count()).select_from(CustomerTag).where(CustomerTag.tag_id == tag.id))
            == 0
        )
    assert _events(db, workspace_id, "tag.added") == []


def test_tags_follow_merges_and_go_back_on_unmerge(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        vip = make_tag(session, actor=owner, group="等级", name="VIP")
        tea = make_tag(session, actor=owner, group="口味", name="奶茶")
        survivor = make_customer(session, workspace_id=workspace_id)
        twin = make_customer(session, workspace_id=workspace_id)
        tags.tag_customer(session, actor=owner, customer_id=survivor.id, tag_id=vip.id)
        tags.tag_customers(session, actor=owner, tag_id=vip.id, customer_ids=[twin.id])
        tags.tag_customer(
            session, actor=owner, customer_id=twin.id, tag_id=tea.id, source="live_code", source_ref="c1"
        )
    with db.transaction() as session:
        log = identity.merge_customers(
            session,
            workspace_id=workspace_id,
            survivor_id=survivor.id,
            merged_id=twin.id,
            reason="t",
            actor_user_id=None,
        )
    assert log.moved["tag_ids"] == [tea.id]

    def carried(customer_id: int) -> dict[str, tuple[str, str | None]]:
        with db.reader() as session:
            return {
                t.name: (t.source, t.source_ref)
                for t in tags.tags_of_customer(session, workspace_id=workspace_id, customer_id=customer_id)
            }

    assert carried(survivor.id) == {"VIP": ("manual", None), "奶茶": ("live_code", "c1")}
    with db.transaction() as session:
        identity.unmerge(session, workspace_id=workspace_id, merge_log_id=log.id, actor_user_id=None)
    assert carried(survivor.id) == {"VIP": ("manual", None)}
    assert carried(twin.id) == {"VIP": ("manual", None), "奶茶": ("live_code", "c1")}


def test_tags_are_in_the_pipl_export_and_go_with_erasure(db: Database, workspace_id: int) -> None:
    from siyu.customers import privacy

    owner = member(db, workspace_id).actor
    with db.transaction() as session:
        vip = make_tag(session, actor=owner, group="等级", name="VIP")
        customer = make_customer(session, workspace_id=workspace_id)
        tags.tag_customer(session, actor=owner, customer_id=customer.id, tag_id=vip.id)
    with db.transaction() as session:
        exported = privacy.export_person(session, actor=owner, customer_id=customer.id)
    assert [(t["group"], t["name"], t["source"]) for t in exported["tags"]] == [("等级", "VIP", "manual")]
    with db.transaction() as session:
        counts = privacy.erase_person(session, actor=owner, customer_id=customer.id)
    assert counts["tags"] == 1
    with db.reader() as session:
        assert tags.tags_of_customer(session, workspace_id=workspace_id, customer_id=customer.id) == []
