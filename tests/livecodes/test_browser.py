"""In chromium: create a live code on its page, "scan" it through the landing page, simulate the add,
and see the customer attributed to the code and the staff member on the code's page.

SQLite only (browser tests are deselected on PostgreSQL by tests/web/conftest.py's hook); skipped, with
the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

from typing import Any

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import make_tag
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot

pytestmark = pytest.mark.browser


def test_create_scan_add_and_see_the_attribution(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="店长")
    seller = make_login(db, workspace_id, Role.STAFF, name="导购小王")
    from siyu.auth import service as auth

    with db.transaction() as session:
        actor = auth.actor_for(session, user_id=owner.user_id, workspace_id=workspace_id)
        make_tag(session, actor=actor, name="桌贴客", group="来源")
    _log_in(page, live_server, owner.email, owner.password)

    page.click("nav >> text=活码")
    page.click("#new-live-code")
    page.fill("input[name=name]", "静安店 3 号桌")
    page.select_option("select[name=placement]", "store_table")
    page.check(f"input[name=staff_{seller.user_id}]")
    page.fill(f"input[name=weight_{seller.user_id}]", "2")
    page.select_option("select[name=auto_tag_ids]", label="来源 / 桌贴客")
    page.fill("textarea[name=welcome_text]", "欢迎！回复 1 领取新人券")
    page.fill("input[name=cost]", "120")
    _shot(page, "livecode-form")
    page.click("#live-code-form button[type=submit]")
    page.wait_for_selector("#qr-preview")
    landing_url = page.inner_text("#landing-url")
    state = page.inner_text("#state")
    assert landing_url.startswith(f"{live_server}/l/") and state.startswith("lc")
    page.wait_for_selector("#livecode-chart svg")  # ECharts drew the daily chart
    # no WeCom in this workspace: the member's way waits for the worker, the hand-entered QR serves
    sync_cell = page.locator(f"#staff-stats tr[data-user='{seller.user_id}'] .wecom-sync")
    assert sync_cell.get_attribute("data-status") == "pending" and "待同步" in sync_cell.inner_text()
    page.click("#wecom-sync-now button[type=submit]")
    page.wait_for_selector("#staff .notice")
    _shot(page, "livecode-detail-empty")

    # the scanner's phone: a visit to the landing page hands them to the staff member
    page.goto(landing_url)
    assert page.inner_text("#staff-name") == "导购小王"
    assert page.inner_text("#state") == state
    assert page.locator("#contact-qr").is_visible()
    _shot(page, "livecode-landing")
    page.click("#demo-add button[type=submit]")
    page.wait_for_selector("#added")
    assert "导购小王" in page.inner_text("#added")

    page.goto(f"{live_server}/live-codes")
    page.click("text=静安店 3 号桌")
    page.wait_for_selector("#adds")
    adds = page.locator("#adds tbody tr")
    assert adds.count() == 1
    assert adds.first.locator(".add-staff").inner_text() == "导购小王"
    assert "新客" in adds.first.inner_text()
    assert page.inner_text("[data-testid=stat-adds] .value") == "1"
    assert page.inner_text("[data-testid=stat-scans] .value") == "1"
    assert page.inner_text("[data-testid=stat-pass-through] .value") == "100.0%"
    assert page.inner_text("[data-testid=stat-cost] .value") == "¥120.00"
    staff_row = page.locator(f"#staff-stats tr[data-user='{seller.user_id}']")
    assert staff_row.locator("td").nth(7).inner_text() == "1"  # new customers of that member
    _shot(page, "livecode-detail")

    # the customer's page: the staff member they added owns them
    adds.first.locator("a").click()
    page.wait_for_url(f"{live_server}/customers/*")
    assert page.inner_text("#owner") == "导购小王"
