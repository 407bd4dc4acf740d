"""In chromium: the communities list, a group's page with its growth chart drawn, a tag added, its
join QR uploaded, the members' orders and a CSV download; then a group code made on its page and its
landing page handing out the group's QR; the list page's activity chart drawn from WeCom's figures.

SQLite only (browser tests are deselected on PostgreSQL by tests/web/conftest.py's hook); skipped, with
the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.wecom import service as wecom
from tests.communities.helpers import chat, png, store
from tests.factories import make_customer, make_order
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom

pytestmark = pytest.mark.browser


def test_a_group_page_with_its_chart_tags_qr_and_a_group_code(
    page: Any, live_server: str, db: Database, workspace_id: int, tmp_path: Path
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="店长")
    with db.transaction() as session:
        buyer = make_customer(
            session, workspace_id=workspace_id, identities={"wecom_external_userid": "wmBrowser1"}
        )
        make_order(session, workspace_id=workspace_id, customer_id=buyer.id, paid_cents=12_800)
        answer = chat("静安福利群", ["wmBrowser1", "wmBrowser2"])
        answer["member_list"][2]["join_time"] = int(time.time()) - 86400 * 2
        chat_id = store(session, workspace_id, answer)
    qr_file = tmp_path / "group-qr.png"
    qr_file.write_bytes(png())
    _log_in(page, live_server, owner.email, owner.password)

    page.click("nav >> text=社群")
    page.wait_for_selector("#groups")
    row = page.locator(f"#groups tr[data-chat='{chat_id}']")
    assert "静安福利群" in row.inner_text()
    row.locator("a").click()
    page.wait_for_selector("#community-chart svg")  # ECharts drew the growth chart
    assert page.inner_text("[data-testid=stat-members] .value") == "3"
    assert page.inner_text("[data-testid=stat-customers] .value") == "1"
    assert "128.00" in page.inner_text("#member-orders tr[data-cohort=members]")
    page.fill("#tag-name", "门店群")
    page.click("#add-tag")
    page.wait_for_selector("text=已保存。")
    assert "门店群" in page.inner_text("#group-tags")
    page.set_input_files("input[name=image]", str(qr_file))
    page.click("form[action$='/qr'] button[type=submit]")
    page.wait_for_selector("#group-qr")
    with page.expect_download() as download:
        page.click("[data-testid=csv-growth]")
    saved = tmp_path / "growth.csv"
    download.value.save_as(saved)
    assert saved.read_text(encoding="utf-8-sig").splitlines()[0] == "day,joins,leaves,net,members"
    _shot(page, "community-group")

    page.goto(f"{live_server}/communities/codes")
    page.fill("#new-group-code input[name=name]", "门店入群码")
    page.check(f"#new-group-code input[value='{chat_id}']")
    page.click("#new-group-code button[type=submit]")
    page.wait_for_selector("#code-qr")
    landing_url = page.inner_text("#landing-url")
    assert landing_url.startswith(f"{live_server}/g/")
    page.goto(landing_url)
    assert page.inner_text("#group-name") == "静安福利群"
    assert page.locator("#join-qr").is_visible()
    _shot(page, "community-landing")
    page.goto(f"{live_server}/communities/codes")
    assert "静安福利群 (1)" in page.inner_text("#group-code-list")


def test_a_group_post_made_in_the_page_is_listed_with_its_next_occurrence(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="店长")
    with db.transaction() as session:
        chat_id = store(session, workspace_id, chat("徐汇店群", ["wmPost1"]))
    _log_in(page, live_server, owner.email, owner.password)
    page.goto(f"{live_server}/communities")
    page.click("#group-posts")
    page.wait_for_selector("#new-group-post")
    page.fill("#post-name", "每日午餐菜单")
    page.fill("#post-text", "今日午餐：番茄牛腩饭")
    page.check(f"#new-group-post input[name=target_groups][value='{chat_id}']")
    page.select_option("#post-repeat", "daily")
    page.fill("#post-time", "11:00")
    start = page.input_value("#post-start")  # today in the workspace's time zone
    page.click("#create-post")
    page.wait_for_selector("#post-next")
    assert "11:00" in page.inner_text("#post-next")
    page.click("text=全部群SOP")
    row = page.locator("#group-post-list tr", has_text="每日午餐菜单")
    nxt = row.locator(".next-occurrence").inner_text()
    assert nxt.endswith("11:00") and nxt[:10] >= start
    assert "徐汇店群" in row.inner_text()  # the group by its name
    _shot(page, "group-posts")


def test_the_list_page_draws_the_activity_chart(
    page: Any, live_server: str, db: Database, corp: Corp, fake: FakeWecom
) -> None:
    owner = make_login(db, corp.workspace_id, Role.OWNER, name="店长")
    yesterday = wecom.wecom_yesterday()
    fake.group_stats[(yesterday, "zhangsan")] = {
        "chat_total": 5,
        "chat_has_msg_cnt": 2,
        "member_total": 80,
        "member_has_msg_cnt": 12,
        "msg_total": 260,
    }
    with db.transaction() as session:
        store(session, corp.workspace_id, chat("活跃群", ["wmAct1"], owner="zhangsan"))
        wecom.fetch_group_stats(session, workspace_id=corp.workspace_id, days=[yesterday])
    _log_in(page, live_server, owner.email, owner.password)
    page.goto(f"{live_server}/communities?start={yesterday.isoformat()}&end={yesterday.isoformat()}")
    page.wait_for_selector("#activity-chart svg path", state="attached")  # ECharts drew it
    assert page.inner_text("#activity-totals [data-figure=messages] .value") == "260"
    assert page.inner_text("#activity-totals [data-figure=group_share] .value") == "40.0%"
    assert page.inner_text("#activity-totals [data-figure=member_share] .value") == "15.0%"
    _shot(page, "community-activity")
