"""The member panel of the customer 360 page (会员): balance, ledger, tier and its history, coupons
held; in both languages, and in a real browser."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from siyu.auth import service as auth
from siyu.core.db import Database
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn
from siyu.membership import service as membership
from siyu.membership.models import EntryKind
from siyu.membership.schemas import RulesIn, TierIn
from tests.factories import make_customer
from tests.web.conftest import Login, log_in, make_login
from tests.web.test_browser import _shot


def _member(db: Database, workspace_id: int, owner: Login) -> int:
    with db.transaction() as session:
        actor = auth.actor_for(session, user_id=owner.user_id, workspace_id=workspace_id)
        membership.set_rules(session, actor=actor, body=RulesIn(tier_basis="points"))
        pack = coupons.create_template(
            session,
            actor=actor,
            body=TemplateIn(name="金卡礼包", type="no_threshold", discount_cents=2000, valid_days=30),
        )
        membership.create_tier(
            session, actor=actor, body=TierIn(name="金卡", threshold=100, coupon_template_ids=[pack.id])
        )
        customer_id = make_customer(session, workspace_id=workspace_id, name="周会员").id
        membership.apply(
            session,
            workspace_id=workspace_id,
            customer_id=customer_id,
            kind=EntryKind.EARN,
            points=320,
            source_kind="order",
            source_ref="M-1",
            order_ref="M-1",
        )
        membership.adjust(
            session, actor=actor, customer_id=customer_id, points=-20, reason="手工调整", idempotency_key="a1"
        )
        membership.evaluate_tier(session, workspace_id=workspace_id, customer_id=customer_id)
        return customer_id


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "zh-CN",
            ["积分余额", "积分明细", "金卡", "升级", "持有的优惠券", "金卡礼包", "无门槛", "未使用", "调整"],
        ),
        (
            "en",
            [
                "Points balance",
                "Points ledger",
                "金卡",
                "Upgrade",
                "Coupons held",
                "无门槛 (no threshold)",
                "Unused",
            ],
        ),
    ],
)
def test_member_panel_in_both_languages(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    owner = make_login(db, workspace_id)
    customer_id = _member(db, workspace_id, owner)
    log_in(client, owner)
    client.get(f"/lang/{lang}", follow_redirects=False)
    page = client.get(f"/customers/{customer_id}")
    assert page.status_code == 200
    panel = page.text[page.text.index('id="membership"') :]
    for word in words:
        assert word in panel, word
    assert 'id="points-balance">300<' in panel
    assert "M-1" in panel and "+320" in panel and "-20" in panel


@pytest.mark.browser
def test_member_panel_in_a_browser(browser: Any, live_server: str, db: Database, workspace_id: int) -> None:
    owner = make_login(db, workspace_id)
    customer_id = _member(db, workspace_id, owner)
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{live_server}/login")
        page.fill("input[name=email]", owner.email)
        page.fill("input[name=password]", owner.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}/overview")
        page.goto(f"{live_server}/customers/{customer_id}")
        assert page.inner_text("#points-balance") == "300"
        assert page.inner_text("#member-tier") == "金卡"
        assert "金卡礼包" in page.inner_text("#member-coupons")
        _shot(page, "member-panel")
        page.click("nav >> text=Coupons")
        page.wait_for_url(f"{live_server}/coupons")
        page.fill("#create-template input[name=name]", "满199赠杯")
        page.select_option("#create-template select[name=type]", "gift")
        page.fill("#create-template input[name=threshold]", "199")
        page.fill("#create-template input[name=item_sku]", "CUP-1")
        page.fill("#create-template input[name=item_name]", "随行杯")
        page.fill("#create-template input[name=item_price]", "39")
        page.click("#create-template button[type=submit]")
        page.wait_for_url(f"{live_server}/coupons?saved=1")
        assert "随行杯" in page.inner_text("#coupon-table")
        _shot(page, "coupons")
    finally:
        context.close()


def test_staff_issue_a_coupon_from_the_360_page(client: TestClient, db: Database, workspace_id: int) -> None:
    owner = make_login(db, workspace_id)
    customer_id = _member(db, workspace_id, owner)
    token = log_in(client, owner)
    page = client.get(f"/customers/{customer_id}").text
    assert 'id="issue-coupon"' in page
    key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    with db.reader() as session:
        [template] = [
            t for t in coupons.active_templates(session, workspace_id=workspace_id) if t.name == "金卡礼包"
        ]
    form = {
        "csrf_token": token,
        "customer_id": str(customer_id),
        "template_id": str(template.id),
        "idempotency_key": key,
    }
    # the pack gave one already and the cap per customer is 1: refused with the reason
    refused = client.post("/coupons/issue", data=form)
    assert refused.status_code == 409 and "the most one customer may" in refused.text
    with db.transaction() as session:
        actor = auth.actor_for(session, user_id=owner.user_id, workspace_id=workspace_id)
        other = coupons.create_template(
            session,
            actor=actor,
            body=TemplateIn(name="到店礼", type="no_threshold", discount_cents=500, valid_days=7),
        )
    form["template_id"] = str(other.id)
    done = client.post("/coupons/issue", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/customers/{customer_id}#member-coupons"
    client.post("/coupons/issue", data=form)  # a double submit
    with db.reader() as session:
        held = coupons.coupons_of_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    assert sorted(c.template_name for c in held) == ["到店礼", "金卡礼包"]
    assert next(c for c in held if c.template_name == "到店礼").source_kind == "staff"
    # a customer of another workspace is not found
    with db.transaction() as session:
        from siyu.workspaces import service as workspaces

        elsewhere = workspaces.create_workspace(session, slug=f"x{customer_id}-{other.id}", name="X").id
        stranger = make_customer(session, workspace_id=elsewhere).id
    assert (
        client.post(
            "/coupons/issue", data={**form, "customer_id": str(stranger), "idempotency_key": "z"}
        ).status_code
        == 404
    )
