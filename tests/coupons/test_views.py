"""The coupons page (优惠券) in both languages: templates with their figures, the create form with its
refusals, and roles."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn
from tests.factories import make_customer
from tests.web.conftest import log_in, make_login


def _use_language(client: TestClient, lang: str) -> None:
    client.get(f"/lang/{lang}", follow_redirects=False)


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ["优惠券模板与效果", "满300减50", "核销率", "带动成交额", "满减", "创建模板", "50.0%"]),
        (
            "en",
            [
                "Coupon templates and their figures",
                "Redemption rate",
                "Attributed GMV",
                "满减 (amount off)",
                "50.0%",
            ],
        ),
    ],
)
def test_coupons_page_shows_figures_in_both_languages(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    owner = make_login(db, workspace_id)
    with db.transaction() as session:
        from siyu.auth import service as auth

        actor = auth.actor_for(session, user_id=owner.user_id, workspace_id=workspace_id)
        template = coupons.create_template(
            session,
            actor=actor,
            body=TemplateIn(
                name="满300减50", type="amount_off", threshold_cents=30000, discount_cents=5000, valid_days=7
            ),
        )
        people = [make_customer(session, workspace_id=workspace_id).id for _ in range(2)]
        issued = [
            coupons.issue(
                session,
                workspace_id=workspace_id,
                template_id=template.id,
                customer_id=p,
                source_kind="broadcast",
                source_ref="b1",
                idempotency_key=f"b1-{p}",
            )
            for p in people
        ]
        coupons.redeem(
            session,
            workspace_id=workspace_id,
            code=issued[0].code,
            customer_id=people[0],
            order_ref="O1",
            amount_cents=32000,
        )
    log_in(client, owner)
    _use_language(client, lang)
    page = client.get("/coupons")
    assert page.status_code == 200 and f'lang="{lang}"' in page.text
    for word in words:
        assert word in page.text, word
    row = page.text[page.text.index(f'id="template-{template.id}"') :]
    assert "¥270.00" in row and "¥50.00" in row  # GMV 320 − 50; cost 50


def test_create_form_and_its_refusals(client: TestClient, db: Database, workspace_id: int) -> None:
    owner = make_login(db, workspace_id)
    token = log_in(client, owner)
    form = {
        "csrf_token": token,
        "name": "八折券",
        "type": "percent_off",
        "percent_off": "20",
        "cap": "30",
        "valid_days": "14",
    }
    created = client.post("/coupons", data=form, follow_redirects=False)
    assert created.status_code == 303 and created.headers["location"] == "/coupons?saved=1"
    page = client.get("/coupons?saved=1")
    assert "八折券" in page.text and "最多减¥30.00" in page.text
    again = client.post("/coupons", data=form)
    assert again.status_code == 409 and "exists already" in again.text
    bad = client.post("/coupons", data={**form, "name": "x", "cap": "3.999"})
    assert bad.status_code == 422 and "cap" in bad.text and 'value="x"' in bad.text
    wrong = client.post("/coupons", data={**form, "name": "y", "type": "bogus"})
    assert wrong.status_code == 422 and "type" in wrong.text
    no_csrf = client.post("/coupons", data={k: v for k, v in form.items() if k != "csrf_token"})
    assert no_csrf.status_code == 403


def test_analyst_sees_figures_without_the_form(client: TestClient, db: Database, workspace_id: int) -> None:
    analyst = make_login(db, workspace_id, Role.ANALYST)
    log_in(client, analyst)
    page = client.get("/coupons")
    assert page.status_code == 200 and 'id="create-template"' not in page.text
