"""Tag routes: roles (analysts read, operators write), groups and tags, tagging one customer or a list."""

from __future__ import annotations

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import api_client, make_customer, member


def test_define_tag_and_untag_through_the_api(db: Database, workspace_id: int) -> None:
    operator = member(db, workspace_id, Role.OPERATOR)
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        one = make_customer(session, workspace_id=workspace_id, phone="+8613912340001")
        two = make_customer(session, workspace_id=workspace_id, phone="+8613912340002")
    client = api_client(db)
    assert client.post("/api/tag-groups", json={"name": "等级"}, headers=analyst.headers).status_code == 403
    group = client.post("/api/tag-groups", json={"name": "等级"}, headers=operator.headers)
    assert group.status_code == 201, group.text
    tag = client.post(
        f"/api/tag-groups/{group.json()['id']}/tags", json={"name": "VIP"}, headers=operator.headers
    )
    assert tag.status_code == 201
    tag_id = tag.json()["id"]
    again = client.post(
        f"/api/tag-groups/{group.json()['id']}/tags", json={"name": "VIP"}, headers=operator.headers
    )
    assert again.status_code == 409 and "exists already" in again.json()["message"]
    listed = client.get("/api/tag-groups", headers=analyst.headers).json()
    assert [(g["name"], [t["name"] for t in g["tags"]]) for g in listed] == [("等级", ["VIP"])]

    put = client.put(f"/api/customers/{one.id}/tags/{tag_id}", headers=operator.headers)
    assert put.status_code == 200 and [t["name"] for t in put.json()] == ["VIP"]
    assert client.put(f"/api/customers/{two.id}/tags/{tag_id}", headers=analyst.headers).status_code == 403
    bulk = client.post(
        f"/api/tags/{tag_id}/customers",
        json={"identity_kind": "phone", "values": ["13912340001", "13912340002", "13912349999"]},
        headers=operator.headers,
    )
    assert bulk.json() == {"tag_id": tag_id, "changed": 1, "unchanged": 1, "not_found": ["13912349999"]}
    bad = client.post(f"/api/tags/{tag_id}/customers", json={}, headers=operator.headers)
    assert bad.status_code == 422
    removed = client.post(
        f"/api/tags/{tag_id}/customers/remove",
        json={"customer_ids": [one.id, two.id]},
        headers=operator.headers,
    )
    assert removed.json()["changed"] == 2
    assert client.get(f"/api/customers/{one.id}/tags", headers=analyst.headers).json() == []
    assert client.delete(f"/api/customers/{one.id}/tags/{tag_id}", headers=operator.headers).json() == []
