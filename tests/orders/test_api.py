"""The orders API: cursor pages, one order with lines, staff visibility, revenue by channel in SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.orders import service
from tests.factories import api_client, make_channel, make_customer, make_order, member


def test_list_pages_with_cursor_and_filters(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    base = datetime(2025, 3, 1, tzinfo=UTC)
    with db.transaction() as session:
        channel = make_channel(session, workspace_id=workspace_id)
        customer = make_customer(session, workspace_id=workspace_id)
        ids = [
            make_order(
                session,
                workspace_id=workspace_id,
                customer_id=customer.id,
                placed_at=base + timedelta(days=i),
                channel_id=channel.id if i % 2 else None,
            ).id
            for i in range(5)
        ]
    client = api_client(db)
    seen: list[int] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = client.get("/api/orders", params=params, headers=owner.headers).json()
        seen.extend(o["id"] for o in page["items"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == list(reversed(ids))
    by_channel = client.get("/api/orders", params={"channel_id": channel.id}, headers=owner.headers).json()
    assert [o["id"] for o in by_channel["items"]] == [ids[3], ids[1]]
    ranged = client.get(
        "/api/orders",
        params={
            "start": (base + timedelta(days=1)).isoformat(),
            "end": (base + timedelta(days=3)).isoformat(),
        },
        headers=owner.headers,
    ).json()
    assert [o["id"] for o in ranged["items"]] == [ids[2], ids[1]]
    one = client.get(f"/api/orders/{ids[0]}", headers=owner.headers).json()
    assert one["lines"][0]["sku"] == "MT-01" and one["net_cents"] == 3200


def test_staff_see_only_orders_of_their_customers(db: Database, workspace_id: int) -> None:
    staff = member(db, workspace_id, Role.STAFF)
    with db.transaction() as session:
        mine = make_customer(session, workspace_id=workspace_id, owner_user_id=staff.user_id)
        other = make_customer(session, workspace_id=workspace_id)
        my_order = make_order(session, workspace_id=workspace_id, customer_id=mine.id)
        other_order = make_order(session, workspace_id=workspace_id, customer_id=other.id)
    client = api_client(db)
    listed = client.get("/api/orders", headers=staff.headers).json()
    assert [o["id"] for o in listed["items"]] == [my_order.id]
    assert client.get(f"/api/orders/{other_order.id}", headers=staff.headers).status_code == 404
    assert (
        client.get("/api/orders", params={"customer_id": other.id}, headers=staff.headers).status_code == 404
    )


def test_revenue_by_channel_buckets_in_workspace_time(db: Database, workspace_id: int) -> None:
    # workspace zone is Asia/Shanghai (UTC+8): 2025-03-02 20:00 UTC is 2025-03-03 04:00 there (a Monday)
    with db.transaction() as session:
        dy = make_channel(session, workspace_id=workspace_id, key="douyin", name="抖音")
        mt = make_channel(
            session, workspace_id=workspace_id, key="meituan", name="美团", source_type="meituan"
        )
        c = make_customer(session, workspace_id=workspace_id).id
        at = datetime(2025, 3, 2, 20, 0, tzinfo=UTC)
        make_order(
            session, workspace_id=workspace_id, customer_id=c, channel_id=dy.id, placed_at=at, paid_cents=1000
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=c,
            channel_id=dy.id,
            placed_at=at + timedelta(hours=1),
            paid_cents=2000,
            refunded_cents=500,
            status="partially_refunded",
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=c,
            channel_id=dy.id,
            placed_at=at,
            paid_cents=700,
            refunded_cents=700,
            status="refunded",
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=c,
            channel_id=dy.id,
            placed_at=at,
            status="pending",
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=c,
            channel_id=mt.id,
            placed_at=datetime(2025, 3, 1, 15, 0, tzinfo=UTC),  # 23:00 on Saturday the 1st in Shanghai
            paid_cents=900,
        )
    start, end = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    with db.reader() as session:
        days = service.revenue_by_channel(
            session, workspace_id=workspace_id, start=start, end=end, granularity="day"
        )
        weeks = service.revenue_by_channel(
            session, workspace_id=workspace_id, start=start, end=end, granularity="week"
        )
        months = service.revenue_by_channel(
            session, workspace_id=workspace_id, start=start, end=end, granularity="month"
        )

    def rows(result: list) -> list[tuple[str, str, int, int]]:  # type: ignore[type-arg]
        return [(r.period.isoformat(), r.channel_key, r.net_revenue_cents, r.orders) for r in result]

    assert rows(days) == [("2025-03-01", "meituan", 900, 1), ("2025-03-03", "douyin", 2500, 2)]
    assert sorted(rows(weeks)) == [("2025-02-24", "meituan", 900, 1), ("2025-03-03", "douyin", 2500, 2)]
    assert sorted(rows(months)) == [("2025-03-01", "douyin", 2500, 2), ("2025-03-01", "meituan", 900, 1)]
    owner = member(db, workspace_id)
    response = api_client(db).get(
        "/api/orders/revenue-by-channel",
        params={"start": start.isoformat(), "end": end.isoformat(), "granularity": "month"},
        headers=owner.headers,
    )
    assert response.status_code == 200
    assert {(r["channel_name"], r["net_revenue_cents"]) for r in response.json()} == {
        ("抖音", 2500),
        ("美团", 900),
    }
