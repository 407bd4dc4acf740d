"""The CLV page (客户价值): the last run's figures, the distributions, the calibration chart and the top
customers, in both languages; every chart's data as CSV; scoring from the page needs write rights."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.clv import service as clv
from siyu.core.db import Database
from siyu.web import i18n
from tests.clv.test_service import AS_OF, _pool
from tests.web.conftest import Login, csrf_of, log_in, make_login


def _rows(response: object) -> list[list[str]]:
    text = response.content.decode("utf-8")  # type: ignore[attr-defined]
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ["客户价值", "按预测价值分布", "校准检验", "预测价值最高的客户"]),
        (
            "en",
            [
                "Customer value",
                "Customers by predicted value",
                "Calibration check",
                "highest predicted value",
            ],
        ),
    ],
)
def test_the_clv_page_shows_the_last_run_and_its_charts(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    actor, bought, _ = _pool(db, workspace_id, seed=21)
    with db.transaction() as session:
        clv.score_workspace(session, actor=actor, as_of=AS_OF)  # type: ignore[arg-type]
    with db.reader() as session:
        top = clv.top_customers(session, actor=actor, limit=1)[0]  # type: ignore[arg-type]
    log_in(client, make_login(db, workspace_id))
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get("/clv", params={"holdout_days": 300})
    assert page.status_code == 200, page.text[:500]
    for word in words:
        assert word in page.text
    assert f'href="/customers/{top.customer_id}"' in page.text
    data = json.loads(
        re.search(r'<script type="application/json" id="clv-data">(.*?)</script>', page.text, re.S).group(1)  # type: ignore[union-attr]
    )
    assert sum(data["values"]["customers"]) == sum(data["alive"]["customers"]) == len(bought)
    calibration = data["calibration"]
    assert calibration is not None and calibration["labels"][0] == "0"
    assert len(calibration["actual"]) == len(calibration["predicted"]) == len(calibration["labels"])

    # each chart's data downloads as CSV, and it is the data the chart draws
    values = _rows(client.get("/clv/data.csv", params={"chart": "values"}))
    assert values[0] == ["clv_band", "customers", "clv_yuan"]
    assert [int(r[1]) for r in values[1:]] == data["values"]["customers"]
    rows = _rows(client.get("/clv/data.csv", params={"chart": "calibration", "holdout_days": 300}))
    assert [r[0] for r in rows[1:]] == calibration["labels"]
    assert [round(float(r[2]), 4) for r in rows[1:]] == calibration["actual"]
    assert [round(float(r[3]), 4) for r in rows[1:]] == calibration["predicted"]
    best = _rows(client.get("/clv/data.csv", params={"chart": "top"}))[1]
    assert int(best[0]) == top.customer_id
    assert client.get("/clv/data.csv", params={"chart": "nothing"}).status_code == 404


def test_the_page_says_why_there_is_no_calibration(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    log_in(client, make_login(db, workspace_id))
    page = client.get("/clv")
    assert page.status_code == 200
    assert 'id="calibration-error"' in page.text and "no purchases" in page.text
    assert client.get("/clv", params={"holdout_days": 2}).status_code == 422
    assert client.get("/clv/data.csv", params={"chart": "calibration"}).status_code == 422


def test_scoring_from_the_page_needs_write_rights(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    _pool(db, workspace_id, seed=22)
    analyst = make_login(db, workspace_id, role=Role.ANALYST)
    owner = make_login(db, workspace_id)
    token = log_in(client, owner)
    response = client.post("/clv/score", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    page = client.get("/clv")
    assert 'id="score-now"' in page.text
    with db.reader() as session:
        assert clv.score_summary(session, actor=_actor(session, owner)).scored > 0
    client.cookies.clear()
    log_in(client, analyst)
    page = client.get("/clv")
    assert 'id="score-now"' not in page.text
    assert client.post("/clv/score", data={"csrf_token": csrf_of(page.text)}).status_code == 403


def _actor(session: Session, who: Login) -> Actor:
    return auth.actor_for(session, user_id=who.user_id, workspace_id=who.workspace_id)
