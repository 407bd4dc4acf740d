"""The events API: cursor pages, filters by customer and type, staff visibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import api_client, make_customer, make_event, member


def test_events_pages_and_filters(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    base = datetime(2025, 5, 1, tzinfo=UTC)
    with db.transaction() as session:
        a = make_customer(session, workspace_id=workspace_id)
        b = make_customer(session, workspace_id=workspace_id)
        ids = [
            make_event(
                session,
                workspace_id=workspace_id,
                customer_id=a.id if i < 3 else b.id,
                type="page_view" if i % 2 else "coupon_claimed",
                occurred_at=base + timedelta(minutes=i),
                properties={"i": i},
            ).id
            for i in range(5)
        ]
    client = api_client(db)
    first = client.get("/api/events", params={"limit": 3}, headers=owner.headers).json()
    second = client.get(
        "/api/events", params={"limit": 3, "cursor": first["next_cursor"]}, headers=owner.headers
    ).json()
    assert [e["id"] for e in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next_cursor"] is None
    of_a = client.get("/api/events", params={"customer_id": a.id}, headers=owner.headers).json()
    assert [e["properties"]["i"] for e in of_a["items"]] == [2, 1, 0]
    views = client.get("/api/events", params={"type": "page_view"}, headers=owner.headers).json()
    assert [e["id"] for e in views["items"]] == [ids[3], ids[1]]
    one = client.get(f"/api/events/{ids[0]}", headers=owner.headers).json()
    assert one["type"] == "coupon_claimed"


def test_staff_see_events_of_their_customers_only(db: Database, workspace_id: int) -> None:
    staff = member(db, workspace_id, Role.STAFF)
    with db.transaction() as session:
        mine = make_customer(session, workspace_id=workspace_id, owner_user_id=staff.user_id)
        other = make_customer(session, workspace_id=workspace_id)
        my_event = make_event(session, workspace_id=workspace_id, customer_id=mine.id)
        other_event = make_event(session, workspace_id=workspace_id, customer_id=other.id)
        make_event(session, workspace_id=workspace_id, customer_id=None)
    client = api_client(db)
    listed = client.get("/api/events", headers=staff.headers).json()
    assert [e["id"] for e in listed["items"]] == [my_event.id]
    assert client.get(f"/api/events/{other_event.id}", headers=staff.headers).status_code == 404
