"""Browser tests: headless chromium drives the live app as a person would (log in, search, 360, import).

Run on SQLite only; skipped, with the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.factories import make_channel, make_customer, make_order
from tests.web.conftest import make_login

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# set SIYU_SCREENSHOTS=/tmp/siyu-shots to keep screenshots of the pages for a look by eye
SHOTS = os.environ.get("SIYU_SCREENSHOTS")

pytestmark = pytest.mark.browser

BAD_ORDERS_CSV = (
    "订单号,手机号,实付金额,下单时间,商品名称,数量\n"
    "B-1,13912345601,32.50,2026-01-05 12:00,杨枝甘露,1\n"
    "B-2,12345,18.00,2026-01-06 12:00,柠檬茶,1\n"
    "B-3,13912345603,20.00,not a date,柠檬茶,1\n"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _log_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/overview")


def test_search_360_and_import_with_rejects(
    page: Any, live_server: str, db: Database, workspace_id: int, tmp_path: Path
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="店长")
    with db.transaction() as session:
        channel = make_channel(session, workspace_id=workspace_id, key="meituan-b", name="美团")
        customer = make_customer(
            session, workspace_id=workspace_id, name="李晓雨", phone="+8613955501234", city="成都"
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=customer.id,
            paid_cents=5600,
            channel_id=channel.id,
            external_id="MT-7788",
            lines=[{"sku": "T9", "name": "多肉葡萄", "quantity": 2, "unit_price_cents": 2800}],
        )
    _log_in(page, live_server, owner.email, owner.password)
    page.wait_for_selector("#revenue-chart svg")  # ECharts drew the chart from the vendored file
    assert "美团" in page.inner_text("#revenue-table")
    _shot(page, "overview")

    page.click("nav >> text=客户")
    page.fill("input[name=q]", "139 5550 1234")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/customers?q=*")
    rows = page.locator("#customer-table tbody tr")
    assert rows.count() == 1
    rows.first.locator("a").click()
    page.wait_for_url(f"{live_server}/customers/{customer.id}")
    orders = page.inner_text("#orders")
    assert "MT-7788" in orders and "多肉葡萄" in orders and "¥56.00" in orders
    assert "+8613955501234" in page.inner_text("#identities")
    _shot(page, "customer-360")

    source = tmp_path / "门店订单.csv"
    source.write_text(BAD_ORDERS_CSV, encoding="utf-8-sig")
    page.click("nav >> text=导入")
    page.select_option("select[name=kind]", "orders")
    page.set_input_files("input[name=file]", str(source))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#mapping-table")
    assert page.input_value("select[data-column=订单号]") == "external_id"
    assert page.input_value("select[data-column=手机号]") == "phone"
    page.select_option("select[data-column=商品名称]", "product_name")  # confirm (and touch) the mapping
    _shot(page, "import-mapping")
    page.click("#mapping-form button[type=submit]")
    page.wait_for_selector("#reject-table", timeout=30_000)
    rejected_rows = page.locator("#reject-table tbody tr td:first-child").all_inner_texts()
    assert rejected_rows == ["3", "4"]
    assert "12345" in page.inner_text("#reject-table")
    assert page.inner_text("#inserted") == "1"
    with page.expect_download() as download:
        page.click("text=下载拒绝报告")
    report = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert report[0] == "row,column,value,reason" and len(report) == 3
    _shot(page, "import-result")


def test_staff_cannot_open_another_staff_members_customer(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    alice = make_login(db, workspace_id, Role.STAFF, name="Alice")
    bob = make_login(db, workspace_id, Role.STAFF, name="Bob")
    with db.transaction() as session:
        mine = make_customer(
            session, workspace_id=workspace_id, name="阿丽的客户", owner_user_id=alice.user_id
        )
        theirs = make_customer(
            session, workspace_id=workspace_id, name="阿宝的客户", owner_user_id=bob.user_id
        )
    _log_in(page, live_server, alice.email, alice.password)
    page.goto(f"{live_server}/customers")
    listing = page.inner_text("#customer-table")
    assert "阿丽的客户" in listing and "阿宝的客户" not in listing
    response = page.goto(f"{live_server}/customers/{theirs.id}")
    assert response is not None and response.status == 404
    assert "找不到" in page.inner_text("main") and "阿宝的客户" not in page.content()
    response = page.goto(f"{live_server}/customers/{mine.id}")
    assert response is not None and response.status == 200
    assert "阿丽的客户" in page.inner_text("h1")


def test_clv_page_scores_and_draws_its_charts(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    from tests.clv.test_service import _pool

    _pool(db, workspace_id, seed=31)
    owner = make_login(db, workspace_id, role=Role.OWNER)
    _log_in(page, live_server, owner.email, owner.password)
    page.goto(f"{live_server}/clv")
    assert page.locator("[data-testid=stat-scored] .value").inner_text() == "0"
    page.click("#score-now")
    page.wait_for_url(f"{live_server}/clv")
    assert int(page.locator("[data-testid=stat-scored] .value").inner_text().replace(",", "")) > 0
    for chart in ("#clv-value-chart", "#clv-alive-chart"):
        page.wait_for_selector(f"{chart} svg path", state="attached")
    page.fill("input[name=holdout_days]", "120")
    page.click("#calibration-form button[type=submit]")
    page.wait_for_selector("#clv-calibration-chart svg path", state="attached")
    assert page.locator("#clv-calibration-table tbody tr").count() >= 2
    assert page.locator("#clv-top-table tbody tr").count() >= 1
    with page.expect_download() as download:
        page.click("[data-testid=csv-top]")
    assert download.value.suggested_filename == "clv-top.csv"
    _shot(page, "clv")


def test_staff_writes_to_their_customer_previews_and_sends(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    from siyu.customers import service as customers

    staff = make_login(db, workspace_id, Role.STAFF, name="小周")
    with db.transaction() as session:
        customer = make_customer(
            session, workspace_id=workspace_id, name="陈一一", owner_user_id=staff.user_id
        )
        customers.record_system_consent(
            session, workspace_id=workspace_id, customer_id=customer.id, contact_channel="sms",
            purpose="marketing", status="granted", source="test",
        )  # fmt: skip
    _log_in(page, live_server, staff.email, staff.password)
    page.goto(f"{live_server}/customers/{customer.id}")
    assert "还没有给该客户的消息" in page.inner_text("#reach-history")
    page.click("#write-link")
    page.wait_for_url(f"{live_server}/customers/{customer.id}/message")
    assert "非企微好友" in page.inner_text("[data-channel=wecom]")
    assert page.is_disabled("[data-channel=wecom] input") and page.is_checked("[data-channel=sms] input")
    page.fill("textarea[name=text]", "{{ name }}您好，您预约的到店时间是周六下午")
    page.click("button[value=preview]")
    page.wait_for_selector("#preview")
    assert page.inner_text("#preview-text") == "陈一一您好，您预约的到店时间是周六下午"
    _shot(page, "write-preview")
    page.click("#send-button")
    page.wait_for_selector("#outcome")
    assert page.get_attribute("#outcome", "data-status") == "queued"
    assert "已通过发送网关" in page.inner_text("#outcome-text")
    _shot(page, "write-outcome")
    page.click("text=返回客户")
    page.wait_for_url(f"{live_server}/customers/{customer.id}")
    history = page.inner_text("#reach-history")
    assert "陈一一您好，您预约的到店时间是周六下午" in history and "排队中" in history
