"""The imports API (batch records, jobs with rejects) and the signed webhook end to end."""

from __future__ import annotations

import json
import time

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.ingest import webhooks
from siyu.workspaces import service as workspaces
from tests.factories import api_client, make_channel, member, next_phone


def _orders(phone: str, channel: str) -> list[dict[str, object]]:
    return [
        {
            "external_id": "W-1001",
            "phone": phone,
            "paid_cents": 3200,
            "placed_at": "2025-06-01T10:00:00Z",
            "status": "paid",
            "channel": channel,
        },
        {
            "external_id": "W-1002",
            "phone": "not a phone",
            "paid_cents": 100,
            "placed_at": "2025-06-01T11:00:00Z",
        },
    ]


def test_batch_import_and_jobs(db: Database, workspace_id: int) -> None:
    operator = member(db, workspace_id, Role.OPERATOR)
    analyst = member(db, workspace_id, Role.ANALYST)
    with db.transaction() as session:
        make_channel(session, workspace_id=workspace_id, key="douyin", name="抖音")
    client = api_client(db)
    phone = next_phone()
    response = client.post(
        "/api/imports/orders", json={"records": _orders(phone, "抖音")}, headers=operator.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["result"]["inserted"] == 1
    assert [(r["row"], r["column"]) for r in body["rejects"]] == [(2, "phone")]
    job_id = body["job"]["id"]
    assert [j["id"] for j in client.get("/api/imports", headers=analyst.headers).json()] == [job_id]
    detail = client.get(f"/api/imports/{job_id}", headers=analyst.headers).json()
    assert detail["job"]["rejected_rows"] == 1 and detail["rejects"][0]["row"] == 2
    found = client.get("/api/customers/lookup", params={"phone": phone}, headers=analyst.headers).json()
    assert found["order_count"] == 1 and found["net_revenue_cents"] == 3200
    strict = client.post(
        "/api/imports/orders",
        json={"records": _orders(next_phone(), "抖音"), "strict": True},
        headers=operator.headers,
    ).json()
    assert strict["job"]["status"] == "failed" and strict["result"]["inserted"] == 0
    assert (
        client.post("/api/imports/orders", json={"records": []}, headers=analyst.headers).status_code == 403
    )
    assert (
        client.post("/api/imports/wishes", json={"records": []}, headers=operator.headers).status_code == 422
    )


def test_signed_webhook_is_verified_and_idempotent(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.reader() as session:
        workspace = workspaces.get_workspace(session, workspace_id=workspace_id)
        slug, secret = workspace.slug, workspace.webhook_secret
    client = api_client(db)
    phone = next_phone()
    body = json.dumps({"records": _orders(phone, "")[:1]}).encode()

    def deliver(payload: bytes, *, timestamp: int | None = None, signature: str | None = None) -> dict:  # type: ignore[type-arg]
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": "application/json",
            "X-Siyu-Timestamp": str(ts),
            "X-Siyu-Signature": signature or webhooks.sign(secret=secret, timestamp=ts, body=payload),
        }
        response = client.post(f"/api/hooks/{slug}/orders", content=payload, headers=headers)
        return {"status": response.status_code, **response.json()}

    first = deliver(body)
    assert first["status"] == 200 and first["result"]["inserted"] == 1
    again = deliver(body)
    assert again["status"] == 200 and again["result"]["inserted"] == 0 and again["result"]["unchanged"] == 1
    orders = client.get("/api/orders", headers=owner.headers).json()["items"]
    assert [o["external_id"] for o in orders] == ["W-1001"] and orders[0]["source"] == "webhook"

    stale = deliver(body, timestamp=int(time.time()) - 3600)
    assert stale["status"] == 401 and "stale" in stale["message"]
    wrong = deliver(body, signature="sha256=" + "0" * 64)
    assert wrong["status"] == 401 and wrong["message"] == "wrong signature"
    tampered = deliver(
        body.replace(b"3200", b"1"),
        signature=webhooks.sign(secret=secret, timestamp=int(time.time()), body=body),
    )
    assert tampered["status"] == 401
    missing = client.post(
        f"/api/hooks/{slug}/orders", content=body, headers={"Content-Type": "application/json"}
    )
    assert missing.status_code == 401 and "missing" in missing.json()["message"]
    assert client.get("/api/orders", headers=owner.headers).json()["items"][0]["paid_cents"] == 3200
