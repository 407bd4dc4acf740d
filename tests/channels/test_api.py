"""The channels API: channels, costs and stores; only owners and admins change them."""

from __future__ import annotations

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import api_client, member


def test_channels_costs_and_stores(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    operator = member(db, workspace_id, Role.OPERATOR)
    client = api_client(db)
    created = client.post(
        "/api/channels",
        json={"key": "douyin", "name": "抖音", "source_type": "douyin", "aliases": ["DY"]},
        headers=owner.headers,
    )
    assert created.status_code == 201 and created.json()["aliases"] == ["DY"]
    channel_id = created.json()["id"]
    bad = client.post(
        "/api/channels", json={"key": "x", "name": "x", "source_type": "radio"}, headers=owner.headers
    )
    assert bad.status_code == 422
    assert (
        client.post(
            "/api/channels", json={"key": "y", "name": "y", "source_type": "ads"}, headers=operator.headers
        ).status_code
        == 403
    )
    renamed = client.patch(f"/api/channels/{channel_id}", json={"name": "抖音小店"}, headers=owner.headers)
    assert renamed.json()["name"] == "抖音小店"
    cost = client.post(
        f"/api/channels/{channel_id}/costs",
        json={"period_start": "2025-01-01", "period_end": "2025-01-10", "amount_cents": 100000},
        headers=owner.headers,
    )
    assert cost.status_code == 201
    overlap = client.post(
        f"/api/channels/{channel_id}/costs",
        json={"period_start": "2025-01-05", "period_end": "2025-01-20", "amount_cents": 5},
        headers=owner.headers,
    )
    assert overlap.status_code == 409 and "overlaps" in overlap.json()["message"]
    totals = client.get(
        "/api/costs/by-channel", params={"start": "2025-01-01", "end": "2025-01-05"}, headers=operator.headers
    ).json()
    assert totals == [
        {"channel_id": channel_id, "channel_key": "douyin", "channel_name": "抖音小店", "cost_cents": 50000}
    ]
    listed = client.get(f"/api/channels/{channel_id}/costs", headers=operator.headers).json()
    assert [c["amount_cents"] for c in listed] == [100000]
    assert client.delete(f"/api/costs/{cost.json()['id']}", headers=owner.headers).status_code == 204
    assert client.get(f"/api/channels/{channel_id}/costs", headers=owner.headers).json() == []
    store = client.post(
        "/api/stores", json={"code": "SH-01", "name": "人民广场店", "city": "上海"}, headers=owner.headers
    )
    assert store.status_code == 201
    assert [s["code"] for s in client.get("/api/stores", headers=operator.headers).json()] == ["SH-01"]
    archived = client.post(f"/api/channels/{channel_id}/archive", headers=owner.headers).json()
    assert archived["archived_at"] is not None
    assert client.get("/api/channels", headers=owner.headers).json() == []
    assert (
        len(client.get("/api/channels", params={"include_archived": True}, headers=owner.headers).json()) == 1
    )
