"""Customer reads (search, cursor pages, 360, staff visibility and masking) and single-customer writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import NotFound, PermissionDenied, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service
from siyu.customers.models import Customer
from siyu.customers.schemas import CustomerFilter, ProfileUpdate
from tests.factories import make_customer, make_event, make_member, make_order, member


def _events(db: Database, customer_id: int, type_: str) -> list[DomainEvent]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(DomainEvent).where(DomainEvent.customer_id == customer_id, DomainEvent.type == type_)
            )
        )


def test_search_by_phone_in_any_spelling_by_identity_and_by_name(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        wang = make_customer(session, workspace_id=workspace_id, name="王小明", phone="+8613912341234")
        li = make_customer(
            session, workspace_id=workspace_id, name="李四", identities={"email": "li@example.com"}
        )
    with db.reader() as session:
        for spelling in ("13912341234", "139 1234 1234", "+86 139-1234-1234", "008613912341234"):
            page = service.search_customers(session, actor=owner.actor, query=spelling)
            assert [c.id for c in page.items] == [wang.id], spelling
        assert [
            c.id for c in service.search_customers(session, actor=owner.actor, query="LI@example.com").items
        ] == [li.id]
        assert [c.id for c in service.search_customers(session, actor=owner.actor, query="小明").items] == [
            wang.id
        ]
        assert service.search_customers(session, actor=owner.actor, query="nobody").items == []
        assert service.search_customers(session, actor=owner.actor, query="100%").items == []


def test_cursor_pages_are_stable_and_complete(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    base = utcnow() - timedelta(days=10)
    with db.transaction() as session:
        # two share a created_at to exercise the id tie-break
        ids = [
            make_customer(session, workspace_id=workspace_id, created_at=base + timedelta(hours=i // 2)).id
            for i in range(7)
        ]
    seen: list[int] = []
    cursor = None
    with db.reader() as session:
        for _ in range(10):
            page = service.search_customers(session, actor=owner.actor, cursor=cursor, limit=3)
            seen.extend(c.id for c in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    position = {customer_id: i for i, customer_id in enumerate(ids)}
    expected = sorted(ids, key=lambda c: (position[c] // 2, c), reverse=True)
    assert seen == expected
    with db.reader() as session, pytest.raises(ValidationFailed):
        service.search_customers(session, actor=owner.actor, cursor="not-a-cursor")


def test_filters(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = member(db, workspace_id, Role.STAFF)
    with db.transaction() as session:
        a = make_customer(session, workspace_id=workspace_id, city="上海", owner_user_id=staff.user_id)
        b = make_customer(
            session, workspace_id=workspace_id, city="杭州", identities={"wecom_external_userid": "wm1"}
        )
        make_order(session, workspace_id=workspace_id, customer_id=a.id)
        make_order(session, workspace_id=workspace_id, customer_id=a.id)
        make_order(session, workspace_id=workspace_id, customer_id=b.id)

    def ids(**kwargs: object) -> set[int]:
        with db.reader() as session:
            page = service.search_customers(session, actor=owner.actor, filters=CustomerFilter(**kwargs))
            return {c.id for c in page.items}

    assert ids(city="上海") == {a.id}
    assert ids(owner_user_id=staff.user_id) == {a.id}
    assert ids(has_identity_kind="wecom_external_userid") == {b.id}
    assert ids(min_orders=2) == {a.id}
    assert ids(last_order_from=utcnow() - timedelta(days=2)) == {a.id, b.id}
    assert ids(created_to=utcnow() - timedelta(days=1)) == set()


def test_merged_and_erased_customers_are_never_listed(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        live = make_customer(session, workspace_id=workspace_id)
        merged = make_customer(session, workspace_id=workspace_id)
        erased = make_customer(session, workspace_id=workspace_id)
        merged.merged_into_id = live.id
        erased.erased_at = utcnow()
    with db.reader() as session:
        assert [c.id for c in service.search_customers(session, actor=owner.actor).items] == [live.id]
        assert service.count_customers(session, workspace_id=workspace_id) == 1
        with pytest.raises(NotFound) as raised:
            service.get_customer_360(session, actor=owner.actor, customer_id=merged.id)
        assert raised.value.details == {"merged_into_id": live.id}


def test_staff_see_only_their_customers_with_masked_phones(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        staff = make_member(session, workspace_id=workspace_id, role=Role.STAFF)
        other = make_member(session, workspace_id=workspace_id, role=Role.STAFF)
        mine = make_customer(
            session, workspace_id=workspace_id, phone="+8613812341234", owner_user_id=staff.user_id
        )
        theirs = make_customer(session, workspace_id=workspace_id, owner_user_id=other.user_id)
    with db.reader() as session:
        page = service.search_customers(session, actor=staff.actor)
        assert [(c.id, c.phone) for c in page.items] == [(mine.id, "138****1234")]
        detail = service.get_customer_360(session, actor=staff.actor, customer_id=mine.id)
        assert [i.value for i in detail.identities] == ["138****1234"]
        assert (
            service.lookup_by_identity(session, actor=staff.actor, kind="phone", value="13812341234").id
            == mine.id
        )
        with pytest.raises(NotFound):
            service.get_customer_360(session, actor=staff.actor, customer_id=theirs.id)


def test_360_has_orders_with_lines_timeline_consent_and_owner(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    now = utcnow()
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id, owner_user_id=owner.user_id)
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=customer.id,
            placed_at=now - timedelta(days=3),
            lines=[
                {"sku": "A", "quantity": 2, "unit_price_cents": 1000},
                {"sku": "B", "unit_price_cents": 1200},
            ],
            paid_cents=3200,
        )
        make_event(
            session, workspace_id=workspace_id, customer_id=customer.id, occurred_at=now - timedelta(days=2)
        )
    with db.transaction() as session:
        service.record_consent(
            session,
            actor=owner.actor,
            customer_id=customer.id,
            contact_channel="sms",
            purpose="marketing",
            status="granted",
            occurred_at=now - timedelta(days=1),
        )
    with db.reader() as session:
        view = service.get_customer_360(session, actor=owner.actor, customer_id=customer.id)
    assert view.owner is not None and view.owner.user_id == owner.user_id
    assert [(line.sku, line.amount_cents) for line in view.recent_orders[0].lines] == [
        ("A", 2000),
        ("B", 1200),
    ]
    assert view.rollup is not None and view.rollup.order_count == 1 and view.rollup.net_revenue_cents == 3200
    assert [t.kind for t in view.timeline] == ["consent", "event", "order"]
    assert [(c.contact_channel, c.status) for c in view.consents] == [("sms", "granted")]


def test_timeline_pages_cover_every_entry_once(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    at = utcnow() - timedelta(days=5)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id)
        expected = set()
        for i in range(4):  # orders and events at the same instants exercise the tie-breaks
            expected.add(
                (
                    "order",
                    make_order(
                        session,
                        workspace_id=workspace_id,
                        customer_id=customer.id,
                        placed_at=at + timedelta(hours=i // 2),
                    ).id,
                )
            )
            expected.add(
                (
                    "event",
                    make_event(
                        session,
                        workspace_id=workspace_id,
                        customer_id=customer.id,
                        occurred_at=at + timedelta(hours=i // 2),
                    ).id,
                )
            )
    seen: list[tuple[str, int]] = []
    cursor = None
    with db.reader() as session:
        while True:
            items, cursor = service.customer_timeline(
                session, actor=owner.actor, customer_id=customer.id, cursor=cursor, limit=3
            )
            seen.extend((i.kind, i.id) for i in items)
            if cursor is None:
                break
    assert len(seen) == 8 and set(seen) == expected


def test_update_profile_emits_event_only_on_change(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id, attributes={"vip": True, "old": 1})
    with db.transaction() as session:
        service.update_profile(
            session,
            actor=owner.actor,
            customer_id=customer.id,
            changes=ProfileUpdate(name="新名字", city="北京", attributes={"old": None, "tier": "gold"}),
        )
    with db.transaction() as session:
        service.update_profile(
            session, actor=owner.actor, customer_id=customer.id, changes=ProfileUpdate(city="北京")
        )
    with db.reader() as session:
        row = session.get(Customer, customer.id)
        assert row is not None
        assert (row.name, row.city, row.attributes) == ("新名字", "北京", {"vip": True, "tier": "gold"})
    events = _events(db, customer.id, "customer.updated")
    assert [e.payload["fields"] for e in events] == [["attributes", "city", "name"]]


def test_assign_owner_checks_membership_and_role(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = member(db, workspace_id, Role.STAFF)
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id)
    with db.transaction() as session:
        service.assign_owner(session, actor=owner.actor, customer_id=customer.id, owner_user_id=staff.user_id)
    with db.transaction() as session, pytest.raises(ValidationFailed):
        service.assign_owner(session, actor=owner.actor, customer_id=customer.id, owner_user_id=10**9)
    with db.transaction() as session, pytest.raises(PermissionDenied):
        service.assign_owner(session, actor=analyst.actor, customer_id=customer.id, owner_user_id=None)
    events = _events(db, customer.id, "customer.owner_changed")
    assert [(e.payload["from"], e.payload["to"]) for e in events] == [(None, staff.user_id)]


def test_consent_newest_decision_is_in_force_and_event_only_on_change(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    now = utcnow()
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id)

    def decide(status: str, days_ago: int) -> str:
        with db.transaction() as session:
            return service.record_consent(
                session,
                actor=owner.actor,
                customer_id=customer.id,
                contact_channel="wecom",
                purpose="marketing",
                status=status,
                occurred_at=now - timedelta(days=days_ago),
            ).status

    assert decide("granted", 5) == "granted"
    assert decide("granted", 4) == "granted"  # repeated: no change
    assert decide("withdrawn", 3) == "withdrawn"
    assert decide("granted", 9) == "withdrawn"  # an older decision arriving late changes nothing in force
    changes = _events(db, customer.id, "consent.changed")
    assert [(e.payload["from"], e.payload["to"]) for e in changes] == [
        (None, "granted"),
        ("granted", "withdrawn"),
    ]
    with db.transaction() as session, pytest.raises(ValidationFailed):
        service.record_consent(
            session,
            actor=owner.actor,
            customer_id=customer.id,
            contact_channel="fax",
            purpose="marketing",
            status="granted",
        )


def test_lookup_by_identity_other_workspace_is_not_found(db: Database, workspace_id: int) -> None:
    from siyu.workspaces import service as workspaces

    with db.transaction() as session:
        other_ws = workspaces.create_workspace(session, slug=f"o-{workspace_id}-x", name="Other").id
        make_customer(session, workspace_id=other_ws, phone="+8613700001111")
    owner = member(db, workspace_id)
    with db.reader() as session, pytest.raises(NotFound):
        service.lookup_by_identity(session, actor=owner.actor, kind="phone", value="13700001111")
