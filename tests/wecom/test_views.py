"""The WeCom settings page in zh-CN and English, saving through it (the secret never comes back), and
one browser run of the form."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.web.conftest import log_in, make_login

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def _form(csrf: str, **changes: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "corp_id": "ww1436e0e65a779aee",
        "secret": "page-secret-value",
        "token": "PageToken1",
        "encoding_aes_key": AES_KEY,
        **changes,
    }


def test_the_page_in_both_languages_and_saving(client: TestClient, db: Database, workspace_id: int) -> None:
    token = log_in(client, make_login(db, workspace_id, Role.OWNER))
    empty = client.get("/wecom")
    assert (
        empty.status_code == 200 and "企业微信设置" in empty.text and "保存设置后显示回调地址" in empty.text
    )
    english = client.get("/wecom", headers={"Accept-Language": "en"})
    assert "WeCom (企业微信) settings" in english.text and "Customer-contact secret" in english.text
    saved = client.post("/wecom", data=_form(token), follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/wecom?saved=1"
    shown = client.get("/wecom?saved=1").text
    assert "/wecom/callback/" in shown and "ww1436e0e65a779aee" in shown
    assert "page-secret-value" not in shown  # never shown back
    # changing the token without the secret keeps the saved secret (and the API address set by the API)
    assert (
        client.post(
            "/wecom", data=_form(token, secret="", token="Other2"), follow_redirects=False
        ).status_code
        == 303
    )


def test_a_refused_form_says_why_and_does_not_echo_the_secret(
    client: TestClient,
    db: Database,
    workspace_id: int,
) -> None:
    token = log_in(client, make_login(db, workspace_id, Role.OWNER))
    refused = client.post("/wecom", data=_form(token, encoding_aes_key="tooshort"))
    assert refused.status_code == 422
    assert "EncodingAESKey" in refused.text and "43" in refused.text
    assert "page-secret-value" not in refused.text


def test_only_managers_see_the_page(client: TestClient, db: Database, workspace_id: int) -> None:
    log_in(client, make_login(db, workspace_id, Role.OPERATOR))
    assert client.get("/wecom").status_code == 403
    assert 'href="/wecom"' not in client.get("/overview").text


@pytest.mark.browser
def test_settings_form_in_the_browser(page, live_server: str, db: Database, workspace_id: int) -> None:
    who = make_login(db, workspace_id, Role.OWNER)
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", who.email)
    page.fill("input[name=password]", who.password)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/wecom")
    page.fill("input[name=corp_id]", "ww1436e0e65a779aee")
    page.fill("input[name=secret]", "browser-secret")
    page.fill("input[name=token]", "BrowserTok1")
    page.fill("input[name=encoding_aes_key]", AES_KEY)
    page.click("#wecom-settings button[type=submit]")
    page.wait_for_url("**/wecom?saved=1")
    assert page.locator("#callback-url").inner_text().startswith(f"{live_server}/wecom/callback/")
    assert page.locator("input[name=secret]").input_value() == ""
