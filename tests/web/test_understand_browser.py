"""In chromium: build a nested segment in the builder (an or-group inside the and, a negated
condition), watch the live count follow the edits, save it, export its members as CSV and find as many
rows as the count; then the lifecycle page draws its funnel and Sankey, and the tag page tags from an
uploaded list.

SQLite only (browser tests are deselected on PostgreSQL by tests/web/conftest.py's hook); skipped, with
the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.lifecycle import service as lifecycle
from tests.factories import make_customer, make_order, make_tag
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot, browser, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def _people(db: Database, workspace_id: int, user_id: int) -> None:
    """上海: 3 buyers (one VIP) and 2 who never bought; 北京: 2 buyers; 杭州: 1 VIP who never bought."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        actor = auth.actor_for(session, user_id=user_id, workspace_id=workspace_id)
        vip = make_tag(session, actor=actor, name="VIP", group="等级")
        from siyu.tags import service as tags

        for city, orders, is_vip in (
            ("上海", 2, True),
            ("上海", 1, False),
            ("上海", 3, False),
            ("上海", 0, False),
            ("上海", 0, False),
            ("北京", 1, False),
            ("北京", 2, False),
            ("杭州", 0, True),
        ):
            customer = make_customer(session, workspace_id=workspace_id, city=city)
            for i in range(orders):
                make_order(
                    session,
                    workspace_id=workspace_id,
                    customer_id=customer.id,
                    placed_at=now - timedelta(days=5 + i),
                )
            if is_vip:
                tags.tag_customer(session, actor=actor, customer_id=customer.id, tag_id=vip.id)
        lifecycle.sweep(session, actor=actor, now=now - timedelta(days=1))
        lifecycle.sweep(session, actor=actor, now=now + timedelta(days=100))


def _wait_count(tab: Any, expected: int) -> None:
    tab.wait_for_function(f"() => document.getElementById('live-count').dataset.count === '{expected}'")


def test_build_a_nested_segment_count_save_and_export(
    page: Any,  # noqa: F811
    live_server: str,
    db: Database,
    workspace_id: int,
    tmp_path: Path,
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="运营")
    _people(db, workspace_id, owner.user_id)
    _log_in(page, live_server, owner.email, owner.password)
    page.goto(f"{live_server}/segments")
    page.click("#new-segment")
    page.wait_for_selector("#builder .rule-group")
    _wait_count(page, 8)  # an empty and-group matches everyone
    page.fill("#segment-name", "上海或北京的买家")

    # and( order_count >= 1, or(city = 上海, city = 北京), not tag(等级/VIP) )
    root = page.locator("#builder > .rule-group")
    root.locator("> .rule-head [data-role=add-condition]").click()
    first = root.locator("> .rule-children > .rule-cond").nth(0)
    first.locator("[data-role=field]").select_option("order_count")
    first.locator("[data-role=op]").select_option(">=")
    first.locator("[data-role=value]").fill("1")
    _wait_count(page, 5)
    root.locator("> .rule-head [data-role=add-group]").click()
    group = root.locator("> .rule-children > .rule-group").nth(0)
    for city in ("上海", "北京"):
        group.locator("> .rule-head [data-role=add-condition]").click()
        condition = group.locator("> .rule-children > .rule-cond").last
        condition.locator("[data-role=field]").select_option("city")
        condition.locator("[data-role=op]").select_option("=")
        condition.locator("[data-role=value]").fill(city)
    _wait_count(page, 5)
    root.locator("> .rule-head [data-role=add-condition]").click()
    last = root.locator("> .rule-children > .rule-cond").last
    last.locator("[data-role=cond-type]").select_option("tag")
    last.locator("[data-role=tag]").select_option("等级/VIP")
    _wait_count(page, 1)
    last.locator("[data-role=not]").check()
    _wait_count(page, 4)
    assert page.locator("#sample-members li").count() == 4
    text = page.input_value("#rule-text")
    assert text == 'order_count >= 1 and (city = "上海" or city = "北京") and not tag("等级/VIP")'
    _shot(page, "segment-builder")

    # an error names its place: a bad window outlines the condition it is in
    first.locator("[data-role=value]").fill("abc")
    page.wait_for_selector("#builder-error:not([hidden])")
    assert "rule.rules[0]" in page.inner_text("#builder-error")
    assert "has-error" in (first.get_attribute("class") or "")
    first.locator("[data-role=value]").fill("1")
    _wait_count(page, 4)
    page.wait_for_selector("#builder-error", state="hidden")

    # the text form, edited and read back: a typo names its line and column
    page.fill("#rule-text", 'order_count >= 1 and tag("等级/VIP"')
    page.click("#read-text")
    page.wait_for_selector("#builder-error:not([hidden])")
    assert "line 1, column" in page.inner_text("#builder-error")
    page.fill("#rule-text", text)
    page.click("#read-text")
    _wait_count(page, 4)
    page.wait_for_selector("#builder-error", state="hidden")

    page.click("#save-segment")
    page.wait_for_url(f"{live_server}/segments/*?saved=1")
    assert page.inner_text("[data-members]") == "4"
    page.wait_for_selector("#segment-chart svg")
    with page.expect_download() as download_info:
        page.click("#export-csv")
    saved = tmp_path / "members.csv"
    download_info.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 4 and {r["city"] for r in rows} == {"上海", "北京"}
    _shot(page, "segment-detail-saved")

    # the saved rule opens again in the builder as the same tree
    page.click("#edit-segment")
    page.wait_for_selector("#builder .rule-group .rule-group")
    _wait_count(page, 4)
    assert page.input_value("#rule-text") == text


def test_lifecycle_page_draws_the_funnel_and_the_sankey(
    page: Any,  # noqa: F811
    live_server: str,
    db: Database,
    workspace_id: int,
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER)
    _people(db, workspace_id, owner.user_id)
    _log_in(page, live_server, owner.email, owner.password)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    start = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    end = (datetime.now(UTC) + timedelta(days=200)).date().isoformat()
    page.goto(f"{live_server}/lifecycle?start={start}&end={end}")
    page.wait_for_selector("#lifecycle-funnel-chart svg")
    page.wait_for_selector("#lifecycle-flow-chart svg")
    assert page.locator("#lifecycle-flow-chart svg path").count() > 0
    assert errors == []
    _shot(page, "lifecycle")


def test_tag_page_tags_from_an_uploaded_list(
    page: Any,  # noqa: F811
    live_server: str,
    db: Database,
    workspace_id: int,
    tmp_path: Path,
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER)
    with db.transaction() as session:
        actor = auth.actor_for(session, user_id=owner.user_id, workspace_id=workspace_id)
        make_tag(session, actor=actor, name="活动客", group="来源")
        make_customer(session, workspace_id=workspace_id, phone="+8613855556666")
    listing = tmp_path / "名单.csv"
    listing.write_text("手机号\n13855556666\n13000000000\n", encoding="utf-8")
    _log_in(page, live_server, owner.email, owner.password)
    page.click("nav >> text=标签")
    page.select_option("#bulk-form select[name=target]", "file")
    page.set_input_files("#bulk-form input[name=file]", str(listing))
    page.click("#bulk-form button[type=submit]")
    page.wait_for_selector("#bulk-result")
    assert page.get_attribute("#bulk-result", "data-changed") == "1"
    assert page.locator("#reject-table tbody tr").count() == 1
    _shot(page, "tags-bulk")
