"""The JSON API and the pages of broadcasts: create to a segment, start, pause, resume, cancel,
progress that adds up, results; the create form in both languages, with a refused form shown again."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from siyu.broadcasts import service, tasks
from siyu.core.db import Database
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn as CouponTemplateIn
from siyu.web import i18n
from tests.broadcasts.conftest import CONTENT, NOON, audience
from tests.factories import api_client, member
from tests.web.conftest import csrf_of, log_in, make_login


def test_the_api_drives_a_broadcast(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    segment_id, _ids = audience(db, workspace_id, owner.actor, 4)
    client = api_client(db)
    body = {
        "name": "春茶上新",
        "channel_preference": ["wecom", "sms"],
        "content": CONTENT,
        "segment_id": segment_id,
    }
    created = client.post("/api/broadcasts", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    broadcast_id = created.json()["id"]
    assert created.json()["status"] == "draft"
    started = client.post(f"/api/broadcasts/{broadcast_id}/start", headers=owner.headers)
    assert started.json()["status"] == "sending" and started.json()["audience_size"] == 4
    progress = client.get(f"/api/broadcasts/{broadcast_id}/progress", headers=owner.headers).json()
    assert progress["counts"]["awaiting_decision"] == 4 and sum(progress["counts"].values()) == 4
    assert (
        client.post(f"/api/broadcasts/{broadcast_id}/pause", headers=owner.headers).json()["status"]
        == "paused"
    )
    assert (
        client.post(f"/api/broadcasts/{broadcast_id}/resume", headers=owner.headers).json()["status"]
        == "sending"
    )
    tasks.run_due(db, now=NOON)
    progress = client.get(f"/api/broadcasts/{broadcast_id}/progress", headers=owner.headers).json()
    assert progress["counts"]["queued"] == 4
    assert (
        client.post(f"/api/broadcasts/{broadcast_id}/cancel", headers=owner.headers).json()["status"]
        == "cancelled"
    )
    progress = client.get(f"/api/broadcasts/{broadcast_id}/progress", headers=owner.headers).json()
    assert progress["counts"]["suppressed"] == 4 and progress["by_reason"] == {"cancelled": 4}
    again = client.post(f"/api/broadcasts/{broadcast_id}/resume", headers=owner.headers)
    assert again.status_code == 409 and "not paused" in again.text
    results = client.get(f"/api/broadcasts/{broadcast_id}/results", headers=owner.headers).json()
    assert results["groups"][0]["customers"] == 4 and results["clicked"] is None
    refused = client.post(
        "/api/broadcasts", json={**body, "content": {"sms": {"text": "x"}}}, headers=owner.headers
    )
    assert refused.status_code == 422 and "wecom" in refused.text
    listed = client.get("/api/broadcasts", headers=owner.headers).json()
    assert [b["id"] for b in listed] == [broadcast_id]


@pytest.mark.parametrize(
    ("lang", "words"), [("zh-CN", ["新建群发", "对照组"]), ("en", ["New broadcast", "Holdout"])]
)
def test_create_form_and_detail_page(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    owner = member(db, workspace_id)
    segment_id, _ = audience(db, workspace_id, owner.actor, 3)
    log_in(client, make_login(db, workspace_id))
    client.cookies.set(i18n.LANG_COOKIE, lang)
    form = client.get("/broadcasts/new")
    assert form.status_code == 200
    for word in words:
        assert word in form.text
    fields = {
        "csrf_token": csrf_of(form.text), "name": "会员日", "purpose": "marketing", "audience": "segment",
        "segment_id": str(segment_id), "channel_1": "wecom", "channel_2": "sms",
        "wecom_text": "会员日 8 折", "sms_text": "会员日 8 折 退订回T", "holdout": "", "window": "7", "start": "1",
    }  # fmt: skip
    refused = client.post("/broadcasts", data={**fields, "sms_text": ""})
    assert refused.status_code == 422 and "content.sms.text" in refused.text and "会员日" in refused.text
    created = client.post("/broadcasts", data=fields, follow_redirects=False)
    assert created.status_code == 303, created.text[:500]
    detail = client.get(created.headers["location"])
    assert detail.status_code == 200 and 'id="progress-counts"' in detail.text and 'id="pause"' in detail.text
    listing = client.get("/broadcasts")
    assert "会员日" in listing.text
    with db.transaction() as session:  # a coupon chosen in the form goes with the broadcast
        template = coupons.create_template(
            session,
            actor=owner.actor,
            body=CouponTemplateIn(name="会员日券", type="no_threshold", discount_cents=300, valid_days=3),
        )
    form = client.get("/broadcasts/new")
    assert "会员日券" in form.text and "coupon_code" in form.text
    with_coupon = {
        **fields,
        "csrf_token": csrf_of(form.text),
        "coupon_template_id": str(template.id),
        "start": "0",
    }
    created = client.post("/broadcasts", data=with_coupon, follow_redirects=False)
    assert created.status_code == 303, created.text[:500]
    broadcast_id = int(created.headers["location"].split("?")[0].rsplit("/", 1)[-1])
    with db.reader() as session:
        assert (
            service.get_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id).coupon_template_id
            == template.id
        )
