"""The referral JSON API end to end: a campaign with tiers, an inviter's link and poster (the QR
decodes to the link), friends through the landing, progress, tree, board, the review queue, agents
and their ledger; and `siyu referral` on the command line."""

from __future__ import annotations

import io
import json

import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.web.app import create_app
from siyu.workspaces import service as workspaces
from tests.factories import member, next_phone
from tests.referrals.helpers import import_orders, inviter, template


def _client(db: Database) -> TestClient:
    return TestClient(create_app(database=db), base_url="https://brand.example")


def test_campaign_links_posters_and_reports(db: Database, workspace_id: int) -> None:
    client = _client(db)
    owner = member(db, workspace_id)
    coupon = template(db, owner)
    body = {
        "name": "老带新",
        "title": "邀2位好友得20元券",
        "tiers": [{"threshold": 2, "coupon_template_id": coupon}, {"threshold": 3, "points": 500}],
        "invites_per_hour": 3,
        "background": {"kind": "solid", "colors": ["#1e6f5c"]},
    }
    created = client.post("/api/referral-campaigns", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert [t["threshold"] for t in campaign["tiers"]] == [2, 3]
    refused = client.post(
        "/api/referral-campaigns", json={**body, "tiers": [{"threshold": 1}]}, headers=owner.headers
    )
    assert refused.status_code == 422 and "rewards nothing" in refused.text
    who = inviter(db, workspace_id, name="王小美")
    base = f"/api/referral-campaigns/{campaign['id']}"
    assert client.get(f"{base}/links/{who}/poster.png", headers=owner.headers).status_code == 404
    made = client.post(f"{base}/links", json={"customer_id": who}, headers=owner.headers).json()
    assert made["url"] == f"https://brand.example/r/{made['token']}"
    poster = client.get(f"{base}/links/{who}/poster.png", headers=owner.headers)
    assert poster.headers["content-type"] == "image/png"
    [code] = zxingcpp.read_barcodes(Image.open(io.BytesIO(poster.content)))
    assert code.text == made["url"]
    background = io.BytesIO()
    Image.new("RGB", (300, 500), (10, 90, 200)).save(background, format="PNG")
    uploaded = client.post(
        f"{base}/poster-image",
        files={"image": ("bg.png", background.getvalue(), "image/png")},
        headers=owner.headers,
    )
    assert uploaded.status_code == 204 and client.get(base, headers=owner.headers).json()["has_poster_image"]
    bad = client.post(
        f"{base}/poster-image", files={"image": ("x.png", b"<svg/>", "image/png")}, headers=owner.headers
    )
    assert bad.status_code == 422
    [code] = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(client.get(f"{base}/links/{who}/poster.png", headers=owner.headers).content))
    )
    assert code.text == made["url"]

    phones = [next_phone() for _ in range(4)]
    for phone in phones:
        assert client.post(made["path"], data={"phone": phone}).status_code == 200
    [progress] = client.get(f"{base}/progress", headers=owner.headers).json()
    assert (
        progress["inviter_name"],
        progress["qualified"],
        progress["held"],
        progress["next_threshold"],
    ) == (
        "王小美",
        3,
        1,
        None,
    )
    tree = client.get(f"{base}/tree", headers=owner.headers).json()
    assert [n["depth"] for n in tree] == [0, 1, 1, 1, 1]
    [held] = client.get(f"{base}/invites", params={"status": "held"}, headers=owner.headers).json()
    assert held["reason"] == "velocity_hour"
    reviewed = client.post(
        f"/api/referral-invites/{held['id']}/review", json={"decision": "reject"}, headers=owner.headers
    )
    assert reviewed.json()["status"] == "rejected"
    import_orders(
        db,
        workspace_id,
        [
            {
                "external_id": "W1",
                "phone": phones[0],
                "paid_cents": 10000,
                "placed_at": "2026-01-01T10:00:00+08:00",
                "status": "paid",
            }
        ],
    )
    [row] = client.get(
        "/api/referral-board", params={"campaign_id": campaign["id"]}, headers=owner.headers
    ).json()
    assert (row["name"], row["invitees"]) == ("王小美", 3)

    agent = client.post(
        "/api/referral-agents", json={"customer_id": who, "rate_percent": 10}, headers=owner.headers
    )
    assert agent.status_code == 201, agent.text
    assert client.get("/api/referral-agents", headers=owner.headers).json()[0]["invitees"] == 3
    ledger = client.get(f"/api/referral-agents/{agent.json()['id']}/commissions", headers=owner.headers)
    assert ledger.status_code == 200 and ledger.json() == []

    with db.reader() as session:
        slug = workspaces.get_workspace(session, workspace_id=workspace_id).slug
    runner = CliRunner()
    listed = runner.invoke(app, ["referral", "campaigns", "--workspace", slug])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)[0]["rewards_granted"] == 2
    synced = runner.invoke(app, ["referral", "sync", "--workspace", slug])
    assert synced.exit_code == 0 and json.loads(synced.output)["events_read"] >= 1
    [board_row] = json.loads(runner.invoke(app, ["referral", "board", "--workspace", slug]).output)
    assert (board_row["name"], board_row["invitees"]) == ("王小美", 3)
    [agent_row] = json.loads(runner.invoke(app, ["referral", "agents", "--workspace", slug]).output)
    assert agent_row["accrued_cents"] == 0  # W1 was placed before the inviter became an agent
