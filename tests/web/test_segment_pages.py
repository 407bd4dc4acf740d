"""The segment pages (分群): the list with members, lag and drift, and one segment with its members over
time, rule, SQL and members; in both languages, and in a browser (the chart drawn, members paged)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.auth.models import Role
from siyu.auth.service import actor_for
from siyu.cli import app
from siyu.core.db import Database
from siyu.reach.tasks import scheduler_for
from siyu.segments import service as segments
from siyu.segments.views import lag_text
from siyu.web import i18n
from siyu.workspaces.models import Workspace
from tests.factories import make_customer
from tests.web.conftest import log_in, make_login
from tests.web.test_browser import _log_in, _shot, browser, page  # noqa: F401  (fixtures)


def _two_segments(db: Database, workspace_id: int, user_id: int, people: int = 3) -> tuple[int, int]:
    with db.transaction() as session:
        for _ in range(people):
            make_customer(session, workspace_id=workspace_id, city="上海")
        actor = actor_for(session, user_id=user_id, workspace_id=workspace_id)
        city = segments.create_segment(session, actor=actor, name="上海客", rule='city = "上海"')
        recent = segments.create_segment(
            session,
            actor=actor,
            name="近期买过",
            rule='orders(within="30d").count >= 1',
            accept_warnings=True,
        )
        segments.reconcile(session, workspace_id=workspace_id)
    return city.id, recent.id


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ["分群", "最近全量计算", "已同步", "对账差异（缺 / 多）"]),
        ("en", ["Segments (分群)", "Last full build", "Current", "Drift (missing / extra)"]),
    ],
)
def test_segment_list_shows_members_lag_and_drift(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    login = make_login(db, workspace_id)
    city_id, recent_id = _two_segments(db, workspace_id, login.user_id)
    log_in(client, login)
    client.cookies.set(i18n.LANG_COOKIE, lang)
    listed = client.get("/segments")
    assert listed.status_code == 200, listed.text[:400]
    for word in words:
        assert word in listed.text
    assert f'href="/segments/{city_id}"' in listed.text and f'href="/segments/{recent_id}"' in listed.text
    assert "city = &#34;上海&#34;" in listed.text or 'city = "上海"' in listed.text


def test_segment_detail_shows_history_rule_sql_and_members(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    login = make_login(db, workspace_id)
    city_id, _ = _two_segments(db, workspace_id, login.user_id)
    log_in(client, login)
    client.cookies.set(i18n.LANG_COOKIE, "en")
    detail = client.get(f"/segments/{city_id}")
    assert detail.status_code == 200, detail.text[:400]
    text = detail.text
    assert 'id="segment-data"' in text and "Members over the last 90 days" in text
    assert "SELECT customer.id" in text and "0 missing, 0 extra" in text
    assert text.count("/customers/") >= 3
    assert client.get("/segments/999999").status_code == 404


def test_lag_reads_as_people_read_it() -> None:
    assert [lag_text(s) for s in (0, 45, 720, 3 * 3600, 2 * 86400)] == ["0s", "45s", "12m", "3h", "2d"]


@pytest.mark.browser
def test_segment_pages_in_a_browser(page: Any, live_server: str, db: Database, workspace_id: int) -> None:  # noqa: F811
    owner = make_login(db, workspace_id, Role.OWNER, name="店长")
    city_id, _ = _two_segments(db, workspace_id, owner.user_id, people=55)
    _log_in(page, live_server, owner.email, owner.password)
    page.click("nav >> text=分群")
    page.wait_for_url(f"{live_server}/segments")
    row = page.locator(f"tr[data-segment-id='{city_id}']")
    assert "55" in row.inner_text() and row.locator("[data-state=current]").count() == 1
    # the worker's segment jobs: no worker serves this test's app, so processing shows as not current
    assert page.locator("#segment-processing tr[data-job]").count() == 3
    assert page.locator("#segment-processing").get_attribute("data-current") == "no"
    row.locator("a").click()
    page.wait_for_url(f"{live_server}/segments/{city_id}")
    page.wait_for_selector("#segment-chart svg")  # ECharts drew members over time
    assert page.locator("#member-table tbody tr").count() == 50
    _shot(page, "segment-detail")
    page.click("#next-page")
    page.wait_for_url("**/segments/*?cursor=*")
    assert page.locator("#member-table tbody tr").count() == 5


def test_the_list_page_and_the_cli_show_the_jobs(client: TestClient, db: Database, workspace_id: int) -> None:
    login = make_login(db, workspace_id)
    log_in(client, login)
    listed = client.get("/segments")
    assert listed.status_code == 200
    assert 'data-current="no"' in listed.text  # no worker has run yet
    scheduler_for(db, workspace_id=workspace_id).run_due()
    listed = client.get("/segments")
    assert 'data-current="yes"' in listed.text and 'data-job="process"' in listed.text
    with db.reader() as session:
        slug = session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
    assert slug
    result = CliRunner().invoke(app, ["schedule", "status", "--workspace", slug])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("job\tworkspace\tschedule\tlast run")
    process = next(line for line in lines if line.startswith(segments.JOBS["process"]))
    assert f"\t{slug}\tevery 0.5s\t" in process and "\tok: events " in process
    rfm = next(line for line in lines if line.startswith("siyu.rfm.tasks:compute"))
    assert "\tnever run\t" in rfm and "daily 03:00 Asia/Shanghai" in rfm
