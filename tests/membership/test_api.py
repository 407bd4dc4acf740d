"""The membership API: rules (manage), ledger and member view (read), adjustments and actions (write,
once per key), tiers; roles and bad input."""

from __future__ import annotations

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import api_client, make_customer, member


def test_points_and_tiers_through_the_api(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    operator = member(db, workspace_id, Role.OPERATOR)
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        customer_id = make_customer(session, workspace_id=workspace_id).id
    client = api_client(db)
    rules = {"points_per_yuan": 2, "review_points": 30, "expiry_months": 12, "tier_basis": "points"}
    assert client.put("/api/points-rules", json=rules, headers=operator.headers).status_code == 403
    saved = client.put("/api/points-rules", json=rules, headers=owner.headers)
    assert saved.status_code == 200 and saved.json()["review_points"] == 30
    assert client.get("/api/points-rules", headers=analyst.headers).json()["points_per_yuan"] == 2
    bad_rules = client.put("/api/points-rules", json={**rules, "tier_basis": "vibes"}, headers=owner.headers)
    assert bad_rules.status_code == 422

    tier = client.post("/api/tiers", json={"name": "银卡", "threshold": 50}, headers=owner.headers)
    assert tier.status_code == 201, tier.text
    twin = client.post("/api/tiers", json={"name": "银卡", "threshold": 60}, headers=owner.headers)
    assert twin.status_code == 409
    missing_pack = client.post(
        "/api/tiers",
        json={"name": "金卡", "threshold": 500, "coupon_template_ids": [10**9]},
        headers=owner.headers,
    )
    assert missing_pack.status_code == 404

    review = {"action": "review", "source_ref": "review-81"}
    first = client.post(f"/api/customers/{customer_id}/points/actions", json=review, headers=operator.headers)
    again = client.post(f"/api/customers/{customer_id}/points/actions", json=review, headers=operator.headers)
    assert first.status_code == 200 and first.json()["entry"]["points"] == 30
    assert again.json()["entry"]["id"] == first.json()["entry"]["id"]
    signup = client.post(
        f"/api/customers/{customer_id}/points/actions",
        json={"action": "sign_up", "source_ref": "s"},
        headers=operator.headers,
    )
    assert signup.json() == {"entry": None}  # the rules give sign-ups nothing
    custom = client.post(
        f"/api/customers/{customer_id}/points/actions",
        json={"action": "custom", "source_ref": "checkin-1", "points": 25},
        headers=operator.headers,
    )
    assert custom.json()["entry"]["points"] == 25

    too_much = {"points": -100, "reason": "兑换", "idempotency_key": "x-1"}
    refused = client.post(
        f"/api/customers/{customer_id}/points/adjust", json=too_much, headers=operator.headers
    )
    assert refused.status_code == 409 and refused.json()["details"] == {"balance": 55}
    ok = {"points": -15, "reason": "兑换", "idempotency_key": "x-2"}
    taken = client.post(f"/api/customers/{customer_id}/points/adjust", json=ok, headers=operator.headers)
    assert taken.status_code == 200 and taken.json()["balance_after"] == 40
    assert (
        client.post(f"/api/customers/{customer_id}/points/adjust", json=ok, headers=operator.headers).json()[
            "id"
        ]
        == taken.json()["id"]
    )
    assert (
        client.post(
            f"/api/customers/{customer_id}/points/adjust", json=ok, headers=analyst.headers
        ).status_code
        == 403
    )

    points = client.get(f"/api/customers/{customer_id}/points", headers=analyst.headers).json()
    assert points["balance"] == 40 and [e["kind"] for e in points["entries"]] == ["adjust", "earn", "earn"]
    view = client.get(f"/api/customers/{customer_id}/membership", headers=analyst.headers).json()
    assert view["balance"] == 40 and view["basis"] == "points"
    # 55 points earned in 12 months (spending does not lower it): 银卡 since the review and check-in
    assert view["tier"] == "银卡" and view["basis_value"] == 55
    assert client.get(f"/api/customers/{10**9}/membership", headers=analyst.headers).status_code == 404
    assert [t["name"] for t in client.get("/api/tiers", headers=analyst.headers).json()] == ["银卡"]
