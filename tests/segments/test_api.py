"""Segment routes: evaluate a rule by text or JSON (read), save / change / delete (write), errors as 422
with the rule's position."""

from __future__ import annotations

import json

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import api_client, make_customer, make_order, member


def test_evaluate_and_save_through_the_api(db: Database, workspace_id: int) -> None:
    operator = member(db, workspace_id, Role.OPERATOR)
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        buyer = make_customer(session, workspace_id=workspace_id, city="上海")
        make_order(session, workspace_id=workspace_id, customer_id=buyer.id)
        make_customer(session, workspace_id=workspace_id, city="北京")
    client = api_client(db)
    rule = 'city = "上海" and orders(within="30d").count >= 1'
    counted = client.get("/api/segments/count", params={"text": rule}, headers=analyst.headers)
    assert counted.status_code == 200, counted.text
    assert counted.json()["count"] == 1 and counted.json()["text"] == rule
    as_json = json.dumps({"type": "field", "field": "city", "op": "!=", "value": "上海"})
    assert (
        client.get("/api/segments/count", params={"rule": as_json}, headers=analyst.headers).json()["count"]
        == 1
    )
    sample = client.get("/api/segments/sample", params={"text": rule}, headers=analyst.headers).json()
    assert [m["id"] for m in sample["members"]] == [buyer.id]
    explained = client.get("/api/segments/explain", params={"text": rule}, headers=analyst.headers).json()
    assert "customer_order" in explained["sql"] and explained["rule"]["type"] == "and"

    bad = client.get("/api/segments/count", params={"text": 'citty = "上海"'}, headers=analyst.headers)
    assert bad.status_code == 422
    assert bad.json()["where"] == "line 1, column 1" and "did you mean 'city'?" in bad.json()["hint"]
    assert client.get("/api/segments/count", headers=analyst.headers).status_code == 422
    assert client.get("/api/segments/count", params={"rule": "{"}, headers=analyst.headers).status_code == 422

    body = {"name": "上海买家", "text": rule}
    assert client.post("/api/segments", json=body, headers=analyst.headers).status_code == 403
    created = client.post("/api/segments", json=body, headers=operator.headers)
    assert created.status_code == 201, created.text
    segment_id = created.json()["id"]
    everyone = client.post("/api/segments", json={"name": "全部", "text": "all"}, headers=operator.headers)
    assert everyone.status_code == 422 and "matches every customer" in everyone.json()["message"]
    assert client.get(f"/api/segments/{segment_id}/count", headers=analyst.headers).json()["count"] == 1
    group = client.post("/api/tag-groups", json={"name": "活动"}, headers=operator.headers).json()
    tag = client.post(
        f"/api/tag-groups/{group['id']}/tags", json={"name": "618"}, headers=operator.headers
    ).json()
    tagged = client.post(
        f"/api/segments/{segment_id}/tag", json={"tag_id": tag["id"]}, headers=operator.headers
    )
    assert tagged.json() == {"tag_id": tag["id"], "changed": 1, "unchanged": 0, "not_found": []}
    [carried] = client.get(f"/api/customers/{buyer.id}/tags", headers=analyst.headers).json()
    assert (carried["name"], carried["source"], carried["source_ref"]) == (
        "618",
        "manual",
        f"segment:{segment_id}",
    )
    patched = client.patch(
        f"/api/segments/{segment_id}", json={"text": 'city = "北京"'}, headers=operator.headers
    )
    assert patched.json()["rule_text"] == 'city = "北京"'
    assert [s["name"] for s in client.get("/api/segments", headers=analyst.headers).json()] == ["上海买家"]
    assert client.delete(f"/api/segments/{segment_id}", headers=operator.headers).status_code == 204
    assert client.get(f"/api/segments/{segment_id}", headers=analyst.headers).status_code == 404
    gone = client.get("/api/segments/count", params={"text": 'segment("上海买家")'}, headers=analyst.headers)
    assert gone.status_code == 422 and "was deleted" in gone.json()["message"]


def test_live_membership_through_the_api(db: Database, workspace_id: int) -> None:
    operator = member(db, workspace_id, Role.OPERATOR)
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        people = [make_customer(session, workspace_id=workspace_id, city="上海") for _ in range(3)]
    client = api_client(db)
    created = client.post(
        "/api/segments", json={"name": "上海", "text": 'city = "上海"'}, headers=operator.headers
    )
    assert created.status_code == 201, created.text
    segment_id = created.json()["id"]
    assert created.json()["version"] == 1
    [status] = client.get("/api/segments/status", headers=analyst.headers).json()
    assert (status["members"], status["state"], status["time_dependent"]) == (3, "current", False)
    page = client.get(
        f"/api/segments/{segment_id}/members", params={"limit": 2}, headers=analyst.headers
    ).json()
    rest = client.get(
        f"/api/segments/{segment_id}/members", params={"cursor": page["next_cursor"]}, headers=analyst.headers
    ).json()
    assert [m["id"] for m in page["members"] + rest["members"]] == [p.id for p in reversed(people)]
    history = client.get(f"/api/segments/{segment_id}/history", params={"days": 3}, headers=analyst.headers)
    assert [p["members"] for p in history.json()][-1] == 3
    edited = client.patch(f"/api/customers/{people[0].id}", json={"city": "北京"}, headers=operator.headers)
    assert edited.status_code == 200, edited.text
    assert client.post("/api/segments/process", headers=analyst.headers).status_code == 403
    run = client.post("/api/segments/process", headers=operator.headers).json()
    assert (run["entered"], run["left"]) == (0, 1)
    assert client.post("/api/segments/sweep", headers=operator.headers).json()["segments"] == 0
    drift = client.post("/api/segments/reconcile", json={"repair": False}, headers=operator.headers).json()
    assert [(d["missing"], d["extra"]) for d in drift] == [(0, 0)]
    group = client.post("/api/tag-groups", json={"name": "规则"}, headers=operator.headers).json()
    tag = client.post(
        f"/api/tag-groups/{group['id']}/tags", json={"name": "上海客"}, headers=operator.headers
    )
    ruled = client.put(
        f"/api/segments/{segment_id}/rule-tag", json={"tag_id": tag.json()["id"]}, headers=operator.headers
    )
    assert ruled.status_code == 200 and ruled.json()["tag_id"] == tag.json()["id"]
    carried = client.get(f"/api/customers/{people[1].id}/tags", headers=analyst.headers).json()
    assert [(t["name"], t["source"]) for t in carried] == [("上海客", "rule")]
    assert client.get("/api/segments/999999/status", headers=analyst.headers).status_code == 404
