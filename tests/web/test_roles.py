"""Each role against each kind of endpoint: read, write, merge, export, erase, manage; staff visibility."""

from __future__ import annotations

import pytest

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import Member, api_client, make_customer, member

ALL_ROLES = [Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.STAFF]
# expected status per role for one request of each kind (staff act on a customer of their own)
EXPECTED: dict[str, dict[Role, int]] = {
    "read": {Role.OWNER: 200, Role.ADMIN: 200, Role.OPERATOR: 200, Role.ANALYST: 200, Role.STAFF: 200},
    "write": {Role.OWNER: 200, Role.ADMIN: 200, Role.OPERATOR: 200, Role.ANALYST: 403, Role.STAFF: 403},
    "merge": {Role.OWNER: 201, Role.ADMIN: 201, Role.OPERATOR: 201, Role.ANALYST: 403, Role.STAFF: 403},
    "export": {Role.OWNER: 200, Role.ADMIN: 200, Role.OPERATOR: 200, Role.ANALYST: 200, Role.STAFF: 403},
    "erase": {Role.OWNER: 200, Role.ADMIN: 200, Role.OPERATOR: 403, Role.ANALYST: 403, Role.STAFF: 403},
    "manage": {Role.OWNER: 201, Role.ADMIN: 201, Role.OPERATOR: 403, Role.ANALYST: 403, Role.STAFF: 403},
}


@pytest.mark.parametrize("role", ALL_ROLES, ids=[r.value for r in ALL_ROLES])
def test_role_matrix(db: Database, workspace_id: int, role: Role) -> None:
    who: Member = member(db, workspace_id, role)
    with db.transaction() as session:
        made = [
            make_customer(session, workspace_id=workspace_id, owner_user_id=who.user_id).id for _ in range(4)
        ]
    subject, survivor, merged, erased = made
    client = api_client(db)
    got = {
        "read": client.get(f"/api/customers/{subject}", headers=who.headers).status_code,
        "write": client.patch(
            f"/api/customers/{subject}", json={"city": "西安"}, headers=who.headers
        ).status_code,
        "merge": client.post(
            f"/api/customers/{survivor}/merge", json={"merged_id": merged}, headers=who.headers
        ).status_code,
        "export": client.post(f"/api/customers/{subject}/export", headers=who.headers).status_code,
        "erase": client.post(f"/api/customers/{erased}/erase", headers=who.headers).status_code,
        "manage": client.post(
            "/api/channels",
            json={"key": f"ch-{role.value}", "name": f"Channel {role.value}", "source_type": "other"},
            headers=who.headers,
        ).status_code,
    }
    assert got == {kind: statuses[role] for kind, statuses in EXPECTED.items()}


def test_analyst_reads_everything_but_writes_nothing(db: Database, workspace_id: int) -> None:
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id)
    client = api_client(db)
    assert client.get("/api/customers", headers=analyst.headers).json()["items"][0]["id"] == customer.id
    assert client.get("/api/orders", headers=analyst.headers).status_code == 200
    writes = [
        client.put(
            f"/api/customers/{customer.id}/owner", json={"owner_user_id": None}, headers=analyst.headers
        ),
        client.post(
            f"/api/customers/{customer.id}/consents",
            json={"contact_channel": "sms", "purpose": "marketing", "status": "granted"},
            headers=analyst.headers,
        ),
        client.post("/api/stores", json={"code": "S1", "name": "s"}, headers=analyst.headers),
    ]
    assert [w.status_code for w in writes] == [403, 403, 403]
    assert writes[0].json()["message"] == "the analyst role may not write"


def test_staff_see_own_customers_masked_and_404_for_others(db: Database, workspace_id: int) -> None:
    staff = member(db, workspace_id, Role.STAFF)
    colleague = member(db, workspace_id, Role.STAFF)
    with db.transaction() as session:
        mine = make_customer(
            session, workspace_id=workspace_id, owner_user_id=staff.user_id, phone="+8613812341234"
        )
        theirs = make_customer(session, workspace_id=workspace_id, owner_user_id=colleague.user_id)
        nobodys = make_customer(session, workspace_id=workspace_id)
    client = api_client(db)
    listed = client.get("/api/customers", headers=staff.headers).json()["items"]
    assert [(c["id"], c["phone"]) for c in listed] == [(mine.id, "138****1234")]
    detail = client.get(f"/api/customers/{mine.id}", headers=staff.headers).json()
    assert [i["value"] for i in detail["identities"]] == ["138****1234"]
    assert "13812341234" not in client.get(f"/api/customers/{mine.id}", headers=staff.headers).text
    for other in (theirs.id, nobodys.id):
        response = client.get(f"/api/customers/{other}", headers=staff.headers)
        assert response.status_code == 404
        assert client.get(f"/api/customers/{other}/timeline", headers=staff.headers).status_code == 404
    lookup = client.get("/api/customers/lookup", params={"phone": "13812341234"}, headers=staff.headers)
    assert lookup.json()["phone"] == "138****1234"
    overview = client.get(
        "/api/orders/revenue-by-channel",
        params={"start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"},
        headers=staff.headers,
    )
    assert overview.status_code == 403


def test_no_token_or_revoked_token_is_401(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    client = api_client(db)
    assert client.get("/api/customers").status_code == 401
    assert client.get("/api/customers", headers={"Authorization": "Bearer sy_wrong"}).status_code == 401
    with db.transaction() as session:
        token, row = auth.create_api_token(
            session, workspace_id=workspace_id, user_id=owner.user_id, name="x"
        )
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()["role"] == "owner"
    assert client.delete(f"/api/tokens/{row.id}", headers=owner.headers).status_code == 204
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_tokens_api(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    analyst = member(db, workspace_id, Role.ANALYST)
    client = api_client(db)
    created = client.post("/api/tokens", json={"name": "shop sync"}, headers=analyst.headers)
    assert created.status_code == 201
    new_token = created.json()["token"]
    assert client.get("/api/me", headers={"Authorization": f"Bearer {new_token}"}).json()["permissions"] == [
        "read",
        "export",
    ]
    mine = client.get("/api/tokens", headers=analyst.headers).json()
    assert {t["user_id"] for t in mine} == {analyst.user_id} and len(mine) == 2
    everyone = client.get("/api/tokens", headers=owner.headers).json()
    assert {t["user_id"] for t in everyone} == {owner.user_id, analyst.user_id}
    owners_token = next(t["id"] for t in everyone if t["user_id"] == owner.user_id)
    assert client.delete(f"/api/tokens/{owners_token}", headers=analyst.headers).status_code == 404
    assert "token" not in everyone[0]
