"""The coupons API: templates, issue (a retry answers the same), redeem with refusals, reports, roles;
the public check under hostile input, enumeration attempts and its rate limits."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.workspaces import service as workspaces
from tests.factories import api_client, make_customer, member, next_phone, unique


def _setup(db: Database, workspace_id: int) -> dict[str, Any]:
    owner = member(db, workspace_id)
    phone, other_phone = next_phone(), next_phone()
    with db.transaction() as session:
        holder = make_customer(session, workspace_id=workspace_id, phone=phone).id
        other = make_customer(session, workspace_id=workspace_id, phone=other_phone).id
        slug = workspaces.get_workspace(session, workspace_id=workspace_id).slug
    client = api_client(db)
    created = client.post(
        "/api/coupon-templates",
        json={
            "name": unique("满300减50"),
            "type": "amount_off",
            "threshold_cents": 30000,
            "discount_cents": 5000,
            "valid_days": 30,
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]
    issued = client.post(
        f"/api/coupon-templates/{template_id}/issue",
        json={"customer_id": holder, "idempotency_key": "k-1", "source_kind": "staff"},
        headers=owner.headers,
    )
    assert issued.status_code == 201, issued.text
    return {
        "client": client,
        "owner": owner,
        "holder": holder,
        "other": other,
        "phone": phone,
        "other_phone": other_phone,
        "slug": slug,
        "template_id": template_id,
        "code": issued.json()["code"],
        "coupon_id": issued.json()["id"],
    }


def test_issue_redeem_report_through_the_api(db: Database, workspace_id: int) -> None:
    s = _setup(db, workspace_id)
    client, owner = s["client"], s["owner"]
    again = client.post(
        f"/api/coupon-templates/{s['template_id']}/issue",
        json={"customer_id": s["holder"], "idempotency_key": "k-1"},
        headers=owner.headers,
    )
    assert again.json()["id"] == s["coupon_id"]
    short = client.post(
        "/api/coupons/redeem",
        json={"code": s["code"], "customer_id": s["holder"], "order_ref": "A1", "amount_cents": 100},
        headers=owner.headers,
    )
    assert short.status_code == 409 and short.json()["reason"] == "threshold_not_met"
    assert "add 299.00 more" in short.json()["hint"]
    body = {"code": s["code"], "customer_id": s["holder"], "order_ref": "A1", "amount_cents": 40000}
    done = client.post("/api/coupons/redeem", json=body, headers=owner.headers)
    assert done.status_code == 200 and done.json()["discount_cents"] == 5000
    assert (
        client.post("/api/coupons/redeem", json=body, headers=owner.headers).json()["id"] == done.json()["id"]
    )
    used = client.post("/api/coupons/redeem", json={**body, "order_ref": "A2"}, headers=owner.headers)
    assert used.status_code == 409 and used.json()["reason"] == "used"
    by_lines = client.post(
        "/api/coupons/redeem",
        json={**body, "lines": [{"sku": "x", "amount_cents": -1}]},
        headers=owner.headers,
    )
    assert by_lines.status_code == 422
    report = client.get(f"/api/coupon-templates/{s['template_id']}/report", headers=owner.headers).json()
    assert (report["issued"], report["redeemed"], report["attributed_gmv_cents"]) == (1, 1, 35000)
    held = client.get(f"/api/customers/{s['holder']}/coupons", headers=owner.headers).json()
    assert [c["status"] for c in held] == ["redeemed"]
    assert client.post(f"/api/coupons/{s['coupon_id']}/revoke", headers=owner.headers).status_code == 409


def test_roles(db: Database, workspace_id: int) -> None:
    s = _setup(db, workspace_id)
    client = s["client"]
    analyst = member(db, workspace_id, Role.ANALYST)
    assert client.get("/api/coupon-reports", headers=analyst.headers).status_code == 200
    refused = client.post(
        f"/api/coupon-templates/{s['template_id']}/issue",
        json={"customer_id": s["holder"], "idempotency_key": "x"},
        headers=analyst.headers,
    )
    assert refused.status_code == 403
    assert client.post("/api/coupons/redeem", json={}, headers=analyst.headers).status_code in (403, 422)


def _check(s: dict[str, Any], code: str, phone: str, amount: int = 40000, slug: str | None = None):  # type: ignore[no-untyped-def]
    return s["client"].post(
        f"/api/public/{slug or s['slug']}/coupons/check",
        json={"code": code, "phone": phone, "amount_cents": amount},
    )


def test_public_check_answers_the_holder_and_nobody_else(db: Database, workspace_id: int) -> None:
    s = _setup(db, workspace_id)
    mine = _check(s, s["code"], s["phone"])
    assert mine.status_code == 200 and mine.json()["usable"] is True
    assert mine.json()["benefit"]["discount_cents"] == 5000
    # the phone in another spelling (national, with spaces) is the same customer
    national = s["phone"][3:]
    assert (
        _check(s, s["code"].lower(), f"{national[:3]} {national[3:7]} {national[7:]}").json()["usable"]
        is True
    )
    assert _check(s, s["code"], s["phone"], amount=100).json()["reason"] == "threshold_not_met"
    # another customer's phone, an unknown phone, an unknown code, another workspace: one answer
    answers = [
        _check(s, s["code"], s["other_phone"]).json(),
        _check(s, s["code"], "+8613000000000").json(),
        _check(s, "ABCDEFGHJKMNPQRS", s["phone"]).json(),
        _check(s, s["code"], s["phone"], slug="no-such-workspace").json(),
    ]
    assert all(a == answers[0] for a in answers), answers
    assert answers[0]["usable"] is False and answers[0]["reason"] == "not_found"
    assert "benefit" not in answers[0] or answers[0]["benefit"] is None


@pytest.mark.parametrize(
    "hostile",
    [
        "' OR '1'='1",
        "'; DROP TABLE coupon; --",
        "%",
        "_" * 16,
        "ＡＢＣＤＥＦＧＨＪＫＭＮＰＱＲＳ",  # full-width letters
        "😀" * 16,
        "A\u0000BCDEFGHJKMNPQRS",
        "\u202eSRQPNMKJHGFEDCBA",
    ],
)
def test_public_check_with_hostile_codes(db: Database, workspace_id: int, hostile: str) -> None:
    s = _setup(db, workspace_id)
    response = _check(s, hostile, s["phone"])
    assert response.status_code == 200 and response.json()["reason"] == "not_found"
    # and the real coupon is untouched
    assert _check(s, s["code"], s["phone"]).json()["usable"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "A" * 10_000, "phone": "13900000000", "amount_cents": 1}, "code"),
        ({"code": "A", "phone": "1" * 1000, "amount_cents": 1}, "phone"),
        ({"code": "A", "phone": "139' OR 1=1 --", "amount_cents": 1}, "phone"),
        ({"code": "A", "phone": "139\u0000", "amount_cents": 1}, "phone"),
        ({"code": "A", "phone": "13900000000", "amount_cents": -5}, "amount_cents"),
        ({"code": "A", "phone": "13900000000", "amount_cents": 10**30}, "amount_cents"),
        ({"code": ["A"], "phone": "13900000000", "amount_cents": 1}, "code"),
        ({"phone": "13900000000", "amount_cents": 1}, "code"),
    ],
)
def test_public_check_refuses_malformed_input(
    db: Database, workspace_id: int, body: dict[str, Any], field: str
) -> None:
    s = _setup(db, workspace_id)
    response = s["client"].post(f"/api/public/{s['slug']}/coupons/check", json=body)
    assert response.status_code == 422
    assert field in response.text


def test_public_check_is_rate_limited(db: Database, workspace_id: int) -> None:
    s = _setup(db, workspace_id)
    # an enumeration walk from one client: refused after the per-client budget
    statuses = [_check(s, f"ABCDEFGHJKMNP{n:03d}"[:16], f"+86139{n:08d}").status_code for n in range(25)]
    assert statuses[:20] == [200] * 20 and set(statuses[20:]) == {429}
    refused = _check(s, s["code"], s["phone"])
    assert refused.status_code == 429 and "too many" in refused.json()["message"]


def test_public_check_limits_guesses_for_one_phone_across_clients(db: Database, workspace_id: int) -> None:
    s = _setup(db, workspace_id)
    app = s["client"].app
    statuses = []
    for n in range(12):
        # a new client address each time: the per-phone budget still holds
        client = TestClient(app, client=(f"10.0.0.{n}", 50000))
        response = client.post(
            f"/api/public/{s['slug']}/coupons/check",
            json={"code": f"GUESS{n:011d}", "phone": s["phone"], "amount_cents": 1},
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429, 429]
    # another customer's phone from a fresh address is still answered
    other = TestClient(app, client=("10.0.1.1", 50000)).post(
        f"/api/public/{s['slug']}/coupons/check",
        json={"code": s["code"], "phone": s["other_phone"], "amount_cents": 1},
    )
    assert other.status_code == 200
