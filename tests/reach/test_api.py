"""The JSON routes of reach: a staff or API send with an idempotency key, the outbox list, accounting,
the policy, do-not-contact, receipts and SMS replies; staff see only their own customers."""

from __future__ import annotations

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import api_client, make_customer, make_member, member
from tests.reach.conftest import reachable


def test_send_list_and_account_through_the_api(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(3)]
        ids.append(reachable(session, workspace_id=workspace_id, grants=()))
    client = api_client(db)
    body = {
        "customer_ids": ids,
        "channel_preference": ["sms"],
        "content": {"sms": {"text": "到店礼"}},
        "purpose": "transactional",
        "source_ref": "promo-1",
        "idempotency_key": "req-1",
    }
    first = client.post("/api/reach/sends", json=body, headers=owner.headers)
    assert first.status_code == 201, first.text
    assert first.json()["created"] == 4
    again = client.post("/api/reach/sends", json=body, headers=owner.headers).json()
    assert (again["created"], again["existing"]) == (0, 4)
    listed = client.get("/api/reach/messages", params={"source_ref": "promo-1"}, headers=owner.headers).json()
    assert {m["idempotency_key"] for m in listed} == {f"req-1:{c}" for c in ids}
    accounting = client.get(
        "/api/reach/accounting", params={"source": "api", "source_ref": "promo-1"}, headers=owner.headers
    ).json()
    assert accounting["total"] == 4 == sum(accounting["by_status"].values())
    bad = client.post("/api/reach/sends", json={**body, "channel_preference": ["fax"]}, headers=owner.headers)
    assert bad.status_code == 422 and bad.json()["where"] == "channel_preference[0]"


def test_policy_dnc_and_sms_reply(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
        analyst = make_member(session, workspace_id=workspace_id, role=Role.ANALYST)
    client = api_client(db)
    patched = client.patch(
        "/api/reach/policy", json={"marketing_budget": 4, "quiet_hours_off": True}, headers=owner.headers
    )
    assert (
        patched.status_code == 200
        and patched.json()["quiet_start"] is None
        and patched.json()["marketing_budget"] == 4
    )
    assert (
        client.patch("/api/reach/policy", json={"max_attempts": 3}, headers=analyst.headers).status_code
        == 403
    )
    assert client.get("/api/reach/policy", headers=owner.headers).json()["quiet_end"] is None
    dnc = client.put(
        f"/api/reach/contacts/{customer}/do-not-contact", json={"do_not_contact": True}, headers=owner.headers
    )
    assert dnc.status_code == 204
    sent = client.post(
        "/api/reach/sends",
        json={
            "customer_ids": [customer],
            "channel_preference": ["sms"],
            "content": {"sms": {"text": "x"}},
            "source_ref": "p2",
        },
        headers=owner.headers,
    ).json()
    assert sent["by_reason"] == {"do_not_contact": 1}
    phone_customer = client.get(f"/api/customers/{customer}", headers=owner.headers).json()
    phone = next(i["value"] for i in phone_customer["identities"] if i["kind"] == "phone")
    reply = client.post(
        "/api/reach/sms-replies", json={"phone": phone, "text": "退订"}, headers=owner.headers
    )
    assert reply.json() == {"unsubscribed": True}
    assert client.post("/api/reach/receipts", json={"provider_message_id": "none", "outcome": "delivered"},
                       headers=owner.headers).status_code == 404  # fmt: skip


def test_staff_send_only_to_their_own_customers(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        staff = make_member(session, workspace_id=workspace_id, role=Role.STAFF)
        owner = make_member(session, workspace_id=workspace_id, role=Role.OWNER)
        other = make_customer(session, workspace_id=workspace_id, owner_user_id=owner.user_id)
    client = api_client(db)
    body = {"customer_ids": [other.id], "channel_preference": ["sms"], "content": {"sms": {"text": "x"}},
            "source_ref": "s", "source": "staff"}  # fmt: skip
    assert (
        client.post("/api/reach/sends", json=body, headers=staff.headers).status_code == 403
    )  # read-only role
    assert client.get("/api/reach/messages", headers=staff.headers).json() == []
