"""The overview page and its CSVs through an in-process client: every block in both languages with the
figures of the services it draws, each chart's data as CSV, and a number of SQL statements that does
not grow with the brand (no N+1 queries)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from siyu.core.db import Database
from siyu.lifecycle import service as lifecycle
from siyu.metrics import service as metrics
from siyu.rfm import service as rfm
from siyu.web import i18n
from siyu.web.templating import yuan
from siyu.workspaces import service as workspaces
from tests.factories import unique
from tests.overview.world import NEWEST, build_world
from tests.web.conftest import log_in, make_login

BLOCKS = ("metrics", "revenue", "gmv", "roi", "cohorts", "rfm", "stages")
START = datetime.fromisoformat("2026-01-01T00:00:00+08:00")
END = datetime.fromisoformat("2026-05-01T00:00:00+08:00")


def _json(text: str, block: str) -> dict:  # type: ignore[type-arg]
    found = re.search(rf'<script type="application/json" id="{block}">(.*?)</script>', text, re.S)
    assert found, f"no {block} block"
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def _csv(client: TestClient, chart: str, months: int = 4) -> list[list[str]]:
    response = client.get("/overview/data.csv", params={"chart": chart, "months": months})
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ["核心指标", "通过率", "留存率", "转化率", "复购率", "私域 GMV 占比", "月度留存同期群", "生命周期阶段"]),
        ("en", ["The four metrics", "Pass-through rate", "Retention", "Private-domain GMV share", "Monthly retention cohorts", "Lifecycle stages"]),
    ],
)  # fmt: skip
def test_the_overview_shows_every_block_with_the_services_figures(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    actor = build_world(db, workspace_id)
    log_in(client, make_login(db, workspace_id))
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get("/overview", params={"months": 4})
    assert page.status_code == 200, page.text[:500]
    for word in words:
        assert word in page.text, word
    for block in BLOCKS:
        assert f'data-testid="csv-{block}"' in page.text, block
    assert 'href="/metrics/cohorts?period=month"' in page.text and 'href="/rfm"' in page.text
    data = _json(page.text, "overview-data")
    with db.reader() as session:
        # the data stop on 2026-04-28: the page shows January to April 2026
        points = metrics.trend(session, actor=actor, period="month", last=NEWEST.date(), points=4)
        share = metrics.private_domain_share(session, actor=actor, start=START, end=END)
        roi = metrics.channel_roi(session, actor=actor, start=START, end=END)
        layers = rfm.layer_summary(session, actor=actor)
        stages = lifecycle.stage_counts(session, actor=actor)
    assert data["trend"]["months"] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    for key in ("pass_through", "retention", "conversion", "repurchase"):
        expected = [None if getattr(p, key) is None else round(getattr(p, key) * 100, 2) for p in points]
        assert data["trend"]["series"][key] == expected, key
        assert f'data-testid="metric-{key}"' in page.text
    assert data["gmv"] == {
        "private": float(yuan(share.private.gmv_cents)),
        "others": float(yuan(share.others.gmv_cents)),
    }
    assert f"{share.gmv_share * 100:.1f}%" in page.text  # type: ignore[operator]
    assert data["roi"]["channels"] == [r.channel_name for r in roi] and "小程序商城" in page.text
    assert data["roi"]["cost"] == [float(yuan(r.cost_cents)) for r in roi]
    assert data["rfm"]["customers"] == [x.customers for x in layers]
    assert data["stages"]["counts"] == list(stages.values()) and sum(stages.values()) > 0
    assert data["cohorts"]["cohorts"] == ["2026-01", "2026-02", "2026-03", "2026-04"]  # nobody joined before
    assert data["cohorts"]["cells"]  # the marks that have passed


def test_every_chart_downloads_as_csv_with_the_pages_figures(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    actor = build_world(db, workspace_id)
    log_in(client, make_login(db, workspace_id))
    data = _json(client.get("/overview", params={"months": 4}).text, "overview-data")
    with db.reader() as session:
        share = metrics.private_domain_share(session, actor=actor, start=START, end=END)
        roi = metrics.channel_roi(session, actor=actor, start=START, end=END)
        layers = rfm.layer_summary(session, actor=actor)
    trend = _csv(client, "metrics")
    assert trend[0] == ["month", "pass_through", "retention", "conversion", "repurchase"]
    assert [row[0] for row in trend[1:]] == data["trend"]["months"]
    for row in trend[1:]:
        for key, cell in zip(trend[0][1:], row[1:], strict=True):
            shown = data["trend"]["series"][key][trend.index(row) - 1]
            assert (cell == "") == (shown is None) and (cell == "" or round(float(cell) * 100, 2) == shown)
    revenue = _csv(client, "revenue")
    assert [row[0] for row in revenue[1:]] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    gmv = _csv(client, "gmv")
    assert gmv[1][0] == "private" and gmv[1][3] == str(yuan(share.private.gmv_cents))
    assert float(gmv[1][4]) == pytest.approx(share.gmv_share, abs=1e-4)
    roi_rows = _csv(client, "roi")
    assert [row[0] for row in roi_rows[1:]] == [r.channel_name for r in roi]
    assert [row[2] for row in roi_rows[1:]] == [str(yuan(r.cost_cents)) for r in roi]
    cohorts = _csv(client, "cohorts")
    assert cohorts[0][:3] == ["cohort", "customers", "days"] and len(cohorts) > 1
    rfm_rows = _csv(client, "rfm")
    assert [int(row[1]) for row in rfm_rows[1:]] == [x.customers for x in layers]
    assert sum(float(row[3]) for row in rfm_rows[1:] if row[3]) == pytest.approx(1.0, abs=1e-3)
    stages = _csv(client, "stages")
    assert stages[0] == ["stage", "customers"] and [row[0] for row in stages[1:]] == data["stages"]["stages"]
    assert client.get("/overview/data.csv", params={"chart": "nope"}).status_code == 404
    assert client.get("/overview/data.csv", params={"chart": "roi", "months": 99}).status_code == 422


def _statements(client: TestClient, db: Database) -> int:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get("/overview", params={"months": 4}).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(seen)


# statements per view of four months (54 on SQLite, 53 on PostgreSQL when written): the session and the
# header, the revenue figures, 3 per month of the metric trends, then one or two per block
CEILING = 60


def test_the_page_runs_as_many_queries_for_a_big_brand_as_for_a_small_one(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    with db.transaction() as session:
        other_workspace_id = workspaces.create_workspace(session, slug=unique("big"), name="Big").id
    build_world(db, workspace_id, size=1)
    build_world(db, other_workspace_id, size=6)
    small, big = make_login(db, workspace_id), make_login(db, other_workspace_id)
    log_in(client, small)
    client.get("/overview", params={"months": 4})  # warm: the first view may load settings
    few = _statements(client, db)
    client.cookies.clear()
    log_in(client, big)
    client.get("/overview", params={"months": 4})
    many = _statements(client, db)
    assert few == many, (few, many)
    assert many <= CEILING
