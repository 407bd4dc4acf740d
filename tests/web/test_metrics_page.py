"""The metrics page (数据): cards, the ROI and cohort tables and the charts' data, in both languages."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient

from siyu.channels import service as channels
from siyu.core.db import Database
from siyu.web import i18n
from tests.factories import make_channel, make_customer, make_order, unique
from tests.web.conftest import log_in, make_login


def _seed(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        douyin = make_channel(session, workspace_id=workspace_id, key=unique("dy"), name="抖音旗舰店")
        channels.add_cost(
            session,
            workspace_id=workspace_id,
            channel_id=douyin.id,
            period_start=date(2026, 3, 1),
            period_end=date(2026, 3, 31),
            amount_cents=10_000,
        )
        friend = make_customer(
            session,
            workspace_id=workspace_id,
            identities={"wecom_external_userid": unique("w")},
            first_channel_id=douyin.id,
        )
        other = make_customer(session, workspace_id=workspace_id)
        for day in (3, 10, 24):
            make_order(
                session,
                workspace_id=workspace_id,
                customer_id=friend.id,
                channel_id=douyin.id,
                paid_cents=5_000,
                placed_at=datetime(2026, 3, day, 4, tzinfo=UTC),
            )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=other.id,
            channel_id=douyin.id,
            paid_cents=5_000,
            placed_at=datetime(2026, 3, 5, 4, tzinfo=UTC),
        )


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ["复购率", "渠道 ROI 与获客成本", "按首购月份的客户 LTV"]),
        ("en", ["Repurchase rate", "Channel ROI and CAC", "LTV by acquisition month"]),
    ],
)
def test_metrics_page_shows_figures_tables_and_chart_data(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    _seed(db, workspace_id)
    log_in(client, make_login(db, workspace_id))
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get("/metrics", params={"start": "2026-03-01", "end": "2026-03-31"})
    assert page.status_code == 200, page.text[:500]
    for word in words:
        assert word in page.text
    text = page.text
    assert "50.0%" in text  # repurchase: 1 of 2 buyers
    assert "75.0%" in text  # private-domain GMV share: ¥150 of ¥200
    assert "抖音旗舰店" in text and "¥200.00" in text and "¥100.00" in text  # ROI row: revenue and cost
    assert "100.0%" in text  # ROI = (200 − 100) / 100
    data = json.loads(
        re.search(r'<script type="application/json" id="metrics-data">(.*?)</script>', text, re.S).group(1)
    )  # type: ignore[union-attr]
    assert data["roi"]["revenue"] == [200.0] and data["roi"]["cost"] == [100.0]
    assert sum(data["intervals"]["counts"]) == 2
    assert data["cohorts"]["cohorts"] == ["2026-03"]
    assert [0, 0, 200.0 / 2] in data["cohorts"]["cells"]  # March's LTV per customer at M0: ¥100
    assert 'href="/metrics"' in text and "/static/vendor/echarts.min.js" in text


def test_a_backwards_range_is_an_error_page(client: TestClient, db: Database, workspace_id: int) -> None:
    log_in(client, make_login(db, workspace_id))
    page = client.get("/metrics", params={"start": "2026-03-31", "end": "2026-03-01"})
    assert page.status_code == 422 and "before it starts" in page.text


def test_each_chart_downloads_its_data_as_csv(client: TestClient, db: Database, workspace_id: int) -> None:
    _seed(db, workspace_id)
    log_in(client, make_login(db, workspace_id))
    window = {"start": "2026-03-01", "end": "2026-03-31"}
    page = client.get("/metrics", params=window)
    for chart in ("roi", "intervals", "cohorts"):
        assert f'data-testid="csv-{chart}"' in page.text

    def rows(chart: str) -> list[list[str]]:
        response = client.get("/metrics/data.csv", params={"chart": chart, **window})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        text = response.content.decode("utf-8")
        assert text.startswith("\ufeff")
        return list(csv.reader(io.StringIO(text[1:])))

    roi = rows("roi")
    assert roi[0][:3] == ["channel", "attributed_revenue_yuan", "cost_yuan"]
    assert roi[1][:3] == ["抖音旗舰店", "200.00", "100.00"] and float(roi[1][3]) == 1.0
    intervals = rows("intervals")
    assert sum(int(r[1]) for r in intervals[1:]) == 2  # the chart's two intervals
    cohorts = rows("cohorts")
    assert cohorts[1][:3] == ["2026-03", "2", "100.00"]
    assert client.get("/metrics/data.csv", params={"chart": "nothing", **window}).status_code == 404
    backwards = {"start": "2026-03-31", "end": "2026-03-01"}
    assert client.get("/metrics/data.csv", params={"chart": "roi", **backwards}).status_code == 422
