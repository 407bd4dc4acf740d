"""The referral pages in both languages: the campaigns list, the create form and its refusals, the
campaign page (progress, tree, board, review queue with approve/reject), the inviter's poster page
and the agents' report."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.referrals import service
from siyu.referrals.schemas import TierIn
from tests.factories import member, next_phone
from tests.referrals.helpers import campaign, invite, inviter, link, template
from tests.web.conftest import log_in, make_login


def _use_language(client: TestClient, lang: str) -> None:
    client.get(f"/lang/{lang}", follow_redirects=False)


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "zh-CN",
            ["裂变活动", "邀请进度", "邀请关系树", "KOC 榜", "审核队列", "超过每小时上限", "通过", "王小美"],
        ),
        (
            "en",
            [
                "Referral campaigns (裂变)",
                "Progress per inviter",
                "Referral tree",
                "KOC board",
                "Over the hourly limit",
            ],
        ),
    ],
)
def test_campaign_page_in_both_languages(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    login = make_login(db, workspace_id)
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=2, points=10)], invites_per_hour=1, name="春季老带新")
    who = inviter(db, workspace_id, name="王小美")
    mine = link(db, workspace_id, found.id, who)
    invite(db, mine, next_phone())
    invite(db, mine, next_phone())  # over the limit: held
    log_in(client, login)
    _use_language(client, lang)
    listing = client.get("/referrals")
    assert listing.status_code == 200 and "春季老带新" in listing.text
    page = client.get(f"/referrals/{found.id}")
    assert page.status_code == 200
    for word in words:
        assert word in page.text, word
    poster_page = client.get(f"/referrals/{found.id}/links/{who}")
    assert poster_page.status_code == 200 and f"/r/{mine.token}" in poster_page.text
    assert client.get(f"/referrals/{found.id}/links/999999999").status_code == 404


def test_create_review_and_agents_through_the_pages(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    login = make_login(db, workspace_id)
    owner = member(db, workspace_id)
    coupon = template(db, owner, name="新人20元券")
    csrf = log_in(client, login)
    form = client.get("/referrals/new")
    assert form.status_code == 200 and "新人20元券" in form.text
    fields = {
        "csrf_token": csrf,
        "name": "五一裂变",
        "title": "邀3位好友得20元券",
        "qualification": "join",
        "per_hour": "1",
        "background": "gradient",
        "color_1": "#c0392b",
        "color_2": "#f39c12",
        "tier_0_threshold": "1",
        "tier_0_template": str(coupon),
        "tier_1_threshold": "1",
        "tier_1_points": "5",
    }
    refused = client.post("/referrals", data=fields)
    assert refused.status_code == 422 and "tiers[1].threshold" in refused.text and "五一裂变" in refused.text
    created = client.post("/referrals", data={**fields, "tier_1_threshold": "4"}, follow_redirects=False)
    assert created.status_code == 303
    campaign_id = int(created.headers["location"].split("/")[2].split("?")[0])
    who = inviter(db, workspace_id, name="李雷")
    made = client.post(
        f"/referrals/{campaign_id}/links",
        data={"csrf_token": csrf, "customer_id": str(who)},
        follow_redirects=False,
    )
    assert made.headers["location"] == f"/referrals/{campaign_id}/links/{who}"
    with db.reader() as session:
        mine = service.existing_link(
            session, workspace_id=workspace_id, campaign_id=campaign_id, inviter_customer_id=who
        )
    invite(db, mine, next_phone())
    held = invite(db, mine, next_phone()).invite
    page = client.get(f"/referrals/{campaign_id}").text
    assert re.search(rf'action="/referrals/invites/{held.id}/review"', page)
    background = io.BytesIO()
    Image.new("RGB", (200, 300), (0, 120, 90)).save(background, format="JPEG")
    uploaded = client.post(
        f"/referrals/{campaign_id}/poster-image",
        data={"csrf_token": csrf},
        files={"image": ("bg.jpg", background.getvalue(), "image/jpeg")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303
    not_an_image = client.post(
        f"/referrals/{campaign_id}/poster-image",
        data={"csrf_token": csrf},
        files={"image": ("x.png", b"GIF89a", "image/png")},
    )
    assert not_an_image.status_code == 422 and "not an image" in not_an_image.text
    assert "改回颜色" in client.get(f"/referrals/{campaign_id}").text
    approved = client.post(
        f"/referrals/invites/{held.id}/review",
        data={"csrf_token": csrf, "decision": "approve"},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    with db.reader() as session:
        assert service.review_queue(session, workspace_id=workspace_id, campaign_id=campaign_id) == []
    agent = client.post(
        "/referrals/agents",
        data={
            "csrf_token": csrf,
            "customer_id": str(who),
            "rate": "5",
            "category": "茶饮",
            "category_rate": "8",
        },
        follow_redirects=False,
    )
    assert agent.status_code == 303
    report = client.get("/referrals/agents").text
    assert "李雷" in report and "5.00%" in report and "茶饮 8.00%" in report
    bad = client.post("/referrals/agents", data={"csrf_token": csrf, "customer_id": str(who), "rate": "500"})
    assert bad.status_code == 422 and "rate" in bad.text


def test_analysts_read_but_cannot_create_campaigns(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    staff = make_login(db, workspace_id, role=Role.ANALYST)
    log_in(client, staff)
    assert client.get("/referrals").status_code == 200
    assert client.get("/referrals/new").status_code == 403
