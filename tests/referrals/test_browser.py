"""In chromium: create a referral campaign on its page, make an inviter's poster, open the invite link
as the friend, join with a phone, and see the invite and the reward on the campaign page.

SQLite only (browser tests are deselected on PostgreSQL by tests/web/conftest.py's hook); skipped, with
the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

from typing import Any

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import make_customer, next_phone
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot

pytestmark = pytest.mark.browser


def test_create_campaign_share_poster_and_join(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="店长")
    with db.transaction() as session:
        inviter = make_customer(session, workspace_id=workspace_id, name="王小美").id
    _log_in(page, live_server, owner.email, owner.password)

    page.click("nav >> text=裂变")
    page.click("#new-campaign")
    page.fill("input[name=name]", "春季老带新")
    page.fill("input[name=title]", "邀1位好友得积分")
    page.fill("input[name=tier_0_threshold]", "1")
    page.fill("input[name=tier_0_points]", "100")
    _shot(page, "referral-form")
    page.click("#campaign-form button[type=submit]")
    page.wait_for_selector("#tier-list")
    page.fill("#make-link input[name=customer_id]", str(inviter))
    page.click("#make-link button[type=submit]")
    page.wait_for_selector("#poster")
    page.wait_for_function("document.querySelector('#poster').naturalWidth > 0")  # the PNG loaded
    assert page.evaluate("document.querySelector('#poster').naturalWidth") == 750
    invite_url = page.inner_text("#invite-url")
    assert invite_url.startswith(f"{live_server}/r/")
    _shot(page, "referral-poster")

    # the friend opens the link and joins
    page.goto(invite_url)
    assert page.inner_text("#campaign-title") == "邀1位好友得积分"
    assert "王**" in page.inner_text("#inviter")
    page.fill("input[name=phone]", next_phone()[3:])
    _shot(page, "referral-landing")
    page.click("#join-form button[type=submit]")
    page.wait_for_selector("#thanks")

    page.goto(f"{live_server}/referrals")
    page.click("text=春季老带新")
    page.wait_for_selector("#progress")
    row = page.locator("#progress tbody tr").first
    assert "王小美" in row.inner_text()
    assert row.locator("td").nth(3).inner_text() == "1"  # qualified
    assert row.locator("td").nth(5).inner_text() == "1"  # the tier's reward
    assert page.locator("#tree li").count() == 2
    _shot(page, "referral-campaign")
