"""The experiments API: create, start, assign (the same arm on a retry), results; roles."""

from __future__ import annotations

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import api_client, make_customer, member, unique


def test_experiment_flow_through_the_api(db: Database, workspace_id: int) -> None:
    operator = member(db, workspace_id, Role.OPERATOR)
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        customers = [make_customer(session, workspace_id=workspace_id).id for _ in range(20)]
    client = api_client(db)
    body = {
        "key": unique("api"),
        "name": "会员日",
        "variants": {"control": 1, "coupon": 1},
        "holdout_share": 0.2,
    }
    assert client.post("/api/experiments", json=body, headers=analyst.headers).status_code == 403
    created = client.post("/api/experiments", json=body, headers=operator.headers)
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    assert created.json()["status"] == "draft" and [v["name"] for v in created.json()["variants"]] == [
        "control",
        "coupon",
    ]
    early = client.post(
        f"/api/experiments/{experiment_id}/assign",
        json={"customer_id": customers[0]},
        headers=operator.headers,
    )
    assert early.status_code == 409 and "not running" in early.json()["message"]
    assert (
        client.post(f"/api/experiments/{experiment_id}/start", headers=operator.headers).json()["status"]
        == "running"
    )
    arms = {}
    for customer_id in customers:
        first = client.post(
            f"/api/experiments/{experiment_id}/assign",
            json={"customer_id": customer_id},
            headers=operator.headers,
        )
        again = client.post(
            f"/api/experiments/{experiment_id}/assign",
            json={"customer_id": customer_id},
            headers=operator.headers,
        )
        assert first.status_code == 200 and first.json() == again.json()
        arms[customer_id] = first.json()["variant"]
    results = client.get(f"/api/experiments/{experiment_id}/results", headers=analyst.headers)
    assert results.status_code == 200, results.text
    exposed = {arm["name"]: arm["exposed"] for arm in results.json()["arms"]}
    assert sum(exposed.values()) == 20
    assert exposed["holdout"] == sum(1 for v in arms.values() if v is None)
    unknown = client.post(
        f"/api/experiments/{experiment_id}/assign", json={"customer_id": 10**9}, headers=operator.headers
    )
    assert unknown.status_code == 404
