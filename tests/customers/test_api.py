"""The customers API: search with cursor, lookup, 360, profile/owner/consent writes, PIPL, merges."""

from __future__ import annotations

from sqlalchemy import select

from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from tests.factories import api_client, make_customer, make_event, make_order, member


def test_search_lookup_and_360(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id, name="陈一", phone="+8613611112222")
        for i in range(3):
            make_customer(session, workspace_id=workspace_id, name=f"陈{i + 2}")
        make_order(session, workspace_id=workspace_id, customer_id=customer.id)
        make_event(session, workspace_id=workspace_id, customer_id=customer.id, type="coupon_claimed")
    client = api_client(db)
    page = client.get("/api/customers", params={"q": "陈", "limit": 3}, headers=owner.headers).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = client.get(
        "/api/customers", params={"q": "陈", "limit": 3, "cursor": page["next_cursor"]}, headers=owner.headers
    ).json()
    assert [c["id"] for c in rest["items"]] == [customer.id] and rest["next_cursor"] is None
    found = client.get("/api/customers/lookup", params={"phone": "136 1111 2222"}, headers=owner.headers)
    assert found.status_code == 200 and found.json()["id"] == customer.id
    assert found.json()["phone"] == "+8613611112222"
    by_kind = client.get(
        "/api/customers/lookup", params={"kind": "phone", "value": "13611112222"}, headers=owner.headers
    )
    assert by_kind.json()["id"] == customer.id
    assert (
        client.get(
            "/api/customers/lookup", params={"phone": "13600000009"}, headers=owner.headers
        ).status_code
        == 404
    )
    assert client.get("/api/customers/lookup", headers=owner.headers).status_code == 422
    view = client.get(f"/api/customers/{customer.id}", headers=owner.headers).json()
    assert view["profile"]["name"] == "陈一"
    assert [t["kind"] for t in view["timeline"]] == ["event", "order"]
    assert view["recent_orders"][0]["lines"][0]["sku"] == "MT-01"
    assert client.get("/api/customers/999999999", headers=owner.headers).status_code == 404
    assert (
        client.get("/api/customers", params={"cursor": "garbage"}, headers=owner.headers).status_code == 422
    )


def test_writes_through_the_api(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = member(db, workspace_id, "staff")
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id)
    client = api_client(db)
    patched = client.patch(
        f"/api/customers/{customer.id}", json={"city": "深圳", "gender": "female"}, headers=owner.headers
    )
    assert (
        patched.status_code == 200
        and patched.json()["city"] == "深圳"
        and patched.json()["gender"] == "female"
    )
    assigned = client.put(
        f"/api/customers/{customer.id}/owner", json={"owner_user_id": staff.user_id}, headers=owner.headers
    )
    assert assigned.json()["owner_user_id"] == staff.user_id
    consent = client.post(
        f"/api/customers/{customer.id}/consents",
        json={"contact_channel": "wecom", "purpose": "marketing", "status": "granted"},
        headers=owner.headers,
    )
    assert consent.status_code == 201 and consent.json()["status"] == "granted"
    bad = client.post(
        f"/api/customers/{customer.id}/consents",
        json={"contact_channel": "pigeon", "purpose": "marketing", "status": "granted"},
        headers=owner.headers,
    )
    assert bad.status_code == 422
    view = client.get(f"/api/customers/{customer.id}", headers=staff.headers).json()
    assert view["owner"]["user_id"] == staff.user_id and view["consents"][0]["contact_channel"] == "wecom"


def test_pipl_export_and_erase_are_audited(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id, phone="+8613522223333")
        make_order(session, workspace_id=workspace_id, customer_id=customer.id)
    client = api_client(db)
    exported = client.post(f"/api/customers/{customer.id}/export", headers=owner.headers)
    assert exported.status_code == 200
    assert exported.json()["identities"][0]["value"] == "+8613522223333"
    erased = client.post(f"/api/customers/{customer.id}/erase", headers=owner.headers)
    assert erased.status_code == 200 and erased.json()["orders_kept"] == 1
    assert client.get(f"/api/customers/{customer.id}", headers=owner.headers).status_code == 404
    again = client.post(f"/api/customers/{customer.id}/erase", headers=owner.headers)
    assert again.status_code == 409
    with db.reader() as session:
        actions = list(
            session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.workspace_id == workspace_id,
                    AuditEntry.target_type == "customer",
                    AuditEntry.target_id == str(customer.id),
                )
            )
        )
    assert actions == ["customer.exported", "customer.erased"]


def test_merge_and_unmerge_through_the_api(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        survivor = make_customer(session, workspace_id=workspace_id, name="合并甲")
        merged = make_customer(session, workspace_id=workspace_id, name="合并乙")
        make_order(session, workspace_id=workspace_id, customer_id=merged.id)
    client = api_client(db)
    response = client.post(
        f"/api/customers/{survivor.id}/merge",
        json={"merged_id": merged.id, "reason": "same person"},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    log = response.json()
    assert (log["survivor_id"], log["merged_id"]) == (survivor.id, merged.id)
    assert client.get(f"/api/customers/{merged.id}", headers=owner.headers).status_code == 404
    orders = client.get("/api/orders", params={"customer_id": survivor.id}, headers=owner.headers).json()
    assert len(orders["items"]) == 1
    listed = client.get("/api/merges", params={"customer_id": survivor.id}, headers=owner.headers).json()
    assert [m["id"] for m in listed] == [log["id"]]
    undone = client.post(f"/api/merges/{log['id']}/undo", headers=owner.headers)
    assert undone.status_code == 200 and undone.json()["undone_at"] is not None
    assert client.get(f"/api/customers/{merged.id}", headers=owner.headers).status_code == 200
    with db.reader() as session:
        actions = set(
            session.scalars(select(AuditEntry.action).where(AuditEntry.workspace_id == workspace_id))
        )
    assert {a for a in actions if "merge" in a} >= {"identity.merged", "identity.unmerged"} or len(
        actions
    ) >= 2
    assert client.get("/api/identity-reviews", headers=owner.headers).json() == []


def test_list_export_is_csv_and_audited(db: Database, workspace_id: int) -> None:
    analyst = member(db, workspace_id, "analyst")
    staff = member(db, workspace_id, "staff")
    with db.transaction() as session:
        make_customer(session, workspace_id=workspace_id, name="导出甲", city="上海", phone="+8613433334444")
        make_customer(session, workspace_id=workspace_id, name="导出乙", city="北京")
    client = api_client(db)
    response = client.post("/api/customers/export", json={"city": "上海"}, headers=analyst.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("id,name,gender,city,phone")
    assert len(lines) == 2 and "导出甲" in lines[1] and "+8613433334444" in lines[1]
    assert client.post("/api/customers/export", headers=staff.headers).status_code == 403
    with db.reader() as session:
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.workspace_id == workspace_id, AuditEntry.action == "customers.exported"
            )
        )
    assert entry is not None and entry.detail["rows"] == 1 and entry.detail["filters"] == {"city": "上海"}
