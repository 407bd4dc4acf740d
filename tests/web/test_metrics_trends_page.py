"""The metric trends page, the retention cohort page and their CSVs, and the experiment results page:
in both languages, with the same figures as the services they draw."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.core.db import Database
from siyu.experiments import service as experiments
from siyu.metrics import service as metrics
from siyu.web import i18n
from tests.factories import make_customer, make_event, make_order
from tests.web.conftest import Login, log_in, make_login

MARCH_2 = datetime(2026, 3, 2, 4, tzinfo=UTC)  # a Monday, noon in Shanghai


def _seed(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        for n in range(4):
            customer = make_customer(
                session, workspace_id=workspace_id, created_at=MARCH_2 + timedelta(days=n)
            )
            if n % 2:  # two of four buy within their first week, one of them twice
                make_order(
                    session,
                    workspace_id=workspace_id,
                    customer_id=customer.id,
                    placed_at=MARCH_2 + timedelta(days=n, hours=2),
                )
            if n == 3:
                make_order(
                    session,
                    workspace_id=workspace_id,
                    customer_id=customer.id,
                    placed_at=MARCH_2 + timedelta(days=n, hours=5),
                )
            make_event(
                session,
                workspace_id=workspace_id,
                customer_id=customer.id,
                occurred_at=MARCH_2 + timedelta(days=n + 8),
            )


def _json(text: str, block: str) -> dict:  # type: ignore[type-arg]
    found = re.search(rf'<script type="application/json" id="{block}">(.*?)</script>', text, re.S)
    assert found, f"no {block} block"
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def _csv(client: TestClient, path: str, params: dict[str, str]) -> list[list[str]]:
    response = client.get(path, params=params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.mark.parametrize(("lang", "word"), [("zh-CN", "核心指标趋势"), ("en", "Metric trends")])
def test_the_trend_page_draws_the_four_metrics_per_week(
    client: TestClient, db: Database, workspace_id: int, lang: str, word: str
) -> None:
    _seed(db, workspace_id)
    log_in(client, make_login(db, workspace_id))
    client.cookies.set(i18n.LANG_COOKIE, lang)
    params = {"period": "week", "end": "2026-03-08"}
    page = client.get("/metrics/overview", params=params)
    assert page.status_code == 200, page.text[:500]
    assert word in page.text and 'data-testid="csv-trend"' in page.text
    data = _json(page.text, "trend-data")
    assert data["periods"][-1] == "2026-03-02" and len(data["periods"]) == 12
    assert data["series"]["conversion"][-1] == 50.0  # two of the week's four joiners bought
    assert data["series"]["repurchase"][-1] == 50.0  # one of two buyers bought twice
    rows = _csv(client, "/metrics/overview.csv", params)
    assert rows[0] == ["period_start", "pass_through", "retention", "conversion", "repurchase"]
    assert rows[-1][0] == "2026-03-02" and rows[-1][3:] == ["0.5000", "0.5000"]
    assert rows[-1][1] == "0.0000"  # nobody became reachable


def test_the_cohort_page_and_its_csv_agree_with_the_cohort_table(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    _seed(db, workspace_id)
    who = make_login(db, workspace_id)
    log_in(client, who)
    params = {"period": "week", "end": "2026-03-08"}
    page = client.get("/metrics/cohorts", params=params)
    assert page.status_code == 200, page.text[:500]
    data = _json(page.text, "cohort-data")
    assert data["cohorts"] == ["2026-03-02"] and data["days"][:2] == [7, 14]
    # active from 7 to 14 days after joining: everyone (the event 8 days later)
    assert [1, 0, 100.0] in data["active"] and [0, 0, 50.0] in data["active"]
    rows = _csv(client, "/metrics/cohorts.csv", params)
    assert rows[0] == ["cohort", "customers", "days", "reachable", "active", "complete"]
    assert rows[1] == ["2026-03-02", "4", "7", "0", "2", "1"]
    assert rows[2] == ["2026-03-02", "4", "14", "0", "4", "1"]
    with db.reader() as session:
        table = metrics.cohort_table(
            session,
            actor=_actor(who),
            period="week",
            first=date(2026, 3, 2),
            last=date(2026, 3, 8),
            horizon=2,
        )
    assert table[0].active == [2, 4]
    assert client.get("/metrics/cohorts", params={"period": "day"}).status_code == 422
    assert client.get("/metrics/cohorts", params={"channel_id": "x"}).status_code == 422
    assert client.get("/metrics/cohorts", params={"channel_id": ""}).status_code == 200  # an empty field: any


def _actor(who: Login) -> Actor:
    return Actor(user_id=who.user_id, workspace_id=who.workspace_id, role=Role(who.role))


@pytest.mark.parametrize(("lang", "word"), [("zh-CN", "胜出概率"), ("en", "Chance to beat")])
def test_the_experiment_page_shows_arms_comparisons_and_the_sample_ratio_check(
    client: TestClient, db: Database, workspace_id: int, lang: str, word: str
) -> None:
    who = make_login(db, workspace_id)
    actor = _actor(who)
    with db.transaction() as session:
        experiment = experiments.create_experiment(
            session, actor=actor, key="welcome-copy", name="欢迎语", variants={"control": 1, "emoji": 1}
        )
        experiments.start_experiment(session, actor=actor, experiment_id=experiment.id)
        for n in range(40):
            customer = make_customer(session, workspace_id=workspace_id)
            arm = experiments.assign(
                session, workspace_id=workspace_id, experiment_id=experiment.id, customer_id=customer.id
            )
            if arm == "emoji" or n % 4 == 0:
                make_order(session, workspace_id=workspace_id, customer_id=customer.id)
    log_in(client, who)
    client.cookies.set(i18n.LANG_COOKIE, lang)
    listing = client.get("/experiments")
    assert (
        listing.status_code == 200
        and "欢迎语" in listing.text
        and f'href="/experiments/{experiment.id}"' in listing.text
    )
    page = client.get(f"/experiments/{experiment.id}")
    assert page.status_code == 200, page.text[:500]
    with db.reader() as session:
        results = experiments.analyse(session, actor=actor, experiment_id=experiment.id)
    assert word in page.text
    for arm in results.arms:
        assert f"<td>{arm.name}</td>" in page.text
        assert f'<td class="num">{arm.exposed:,}</td>' in page.text
    comparison = results.comparisons[0]
    assert f"{comparison.conversion.p_value:.4f}" in page.text
    assert f"{comparison.chance_to_beat * 100:.1f}%" in page.text
    marker = 'data-testid="srm-warning"' if results.sample_ratio_mismatch else 'data-testid="srm-ok"'
    assert marker in page.text
    assert client.get("/experiments/999999").status_code == 404
