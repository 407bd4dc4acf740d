"""A workspace's own RFM, lifecycle and CLV settings: saved, validated, audited, used by the daily jobs,
"score now", the CLI and the API; editable by managers only; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.auth.models import Role
from siyu.cli import app as cli
from siyu.clv import scoring_settings
from siyu.clv import service as clv
from siyu.clv import tasks as clv_tasks
from siyu.clv.models import CustomerScore
from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.errors import PermissionDenied, ValidationFailed
from siyu.lifecycle import service as lifecycle
from siyu.rfm import service as rfm
from siyu.rfm import tasks as rfm_tasks
from siyu.rfm.models import CustomerRfm, RfmSettings
from siyu.workspaces.models import Workspace
from tests.factories import api_client, make_member
from tests.rfm.test_service import NOW, _expected, _pool

CUTS = rfm.Thresholds(recency_days=(10, 20, 40, 80), frequency=(1, 2, 3, 4), monetary_yuan=(20, 50, 90, 150))


def _stored(db: Database, workspace_id: int) -> dict[int, CustomerRfm]:
    with db.reader() as session:
        return {
            row.customer_id: row
            for row in session.scalars(select(CustomerRfm).where(CustomerRfm.workspace_id == workspace_id))
        }


def test_saved_rfm_settings_drive_the_daily_run_and_the_layer_cut(db: Database, workspace_id: int) -> None:
    actor, orders = _pool(db, workspace_id, 7)
    config = rfm.RfmConfig(window_days=200, method="threshold", thresholds=CUTS, layer_cut=3)
    with db.transaction() as session:
        assert rfm.settings_of(session, workspace_id=workspace_id) == rfm.RfmConfig()
        rfm.update_settings(session, actor=actor, config=config)
    with db.reader() as session:
        assert rfm.settings_of(session, workspace_id=workspace_id) == config
    # the scheduled job takes no options: it must score with the saved settings
    assert rfm_tasks.compute(db, workspace_id=workspace_id, now=NOW).startswith("scored ")
    raw = _expected(orders, window_days=200)

    def score(value: float, points: tuple[float, ...], reverse: bool) -> int:
        for i, point in enumerate(points):
            if value <= point:
                return 5 - i if reverse else i + 1
        return 1 if reverse else 5

    stored = _stored(db, workspace_id)
    assert set(stored) == set(raw)  # the 200-day window, not the default 365
    for customer, row in stored.items():
        recency, frequency, cents = raw[customer]
        r = score(recency, CUTS.recency_days, True)
        f = score(frequency, CUTS.frequency, False)
        m = score(cents, tuple(y * 100 for y in CUTS.monetary_yuan), False)
        assert (row.r, row.f, row.m) == (r, f, m)
        assert row.layer == rfm.LAYERS[(r >= 3, f >= 3, m >= 3)]  # high means at least the cut
    # an explicit option still overrides the saved settings for one run
    with db.transaction() as session:
        run = rfm.compute_rfm(session, actor=actor, now=NOW, window_days=365)
    assert (run.window_days, run.method, run.layer_cut) == (365, "threshold", 3)


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"window_days": 3}, "window_days"),
        ({"method": "kmeans"}, "method"),
        ({"thresholds": rfm.Thresholds(recency_days=(30, 20, 40, 80))}, "thresholds.recency_days"),
        ({"layer_cut": 1}, "layer_cut"),
        ({"layer_cut": 6}, "layer_cut"),
    ],
)
def test_bad_rfm_settings_are_refused_and_nothing_is_saved(
    db: Database, workspace_id: int, changes: dict[str, object], where: str
) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.ADMIN).actor
        with pytest.raises(ValidationFailed) as caught:
            rfm.update_settings(session, actor=actor, config=rfm.RfmConfig(**changes))  # type: ignore[arg-type]
        assert caught.value.where == where
    with db.reader() as session:
        assert session.get(RfmSettings, workspace_id) is None


def test_only_managers_change_settings_and_each_change_is_audited(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        operator = make_member(session, workspace_id=workspace_id, role=Role.OPERATOR).actor
        owner = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        with pytest.raises(PermissionDenied):
            rfm.update_settings(session, actor=operator, config=rfm.RfmConfig(window_days=90))
        with pytest.raises(PermissionDenied):
            lifecycle.update_settings(
                session, actor=operator, thresholds=lifecycle.Thresholds(loyal_orders=3)
            )
        with pytest.raises(PermissionDenied):
            scoring_settings.update_settings(session, actor=operator, config=scoring_settings.ScoringConfig())
        rfm.update_settings(session, actor=owner, config=rfm.RfmConfig(window_days=90))
        scoring_settings.update_settings(
            session, actor=owner, config=scoring_settings.ScoringConfig(model="pareto", horizon_months=6)
        )
    with db.reader() as session:
        entries = {
            e.action: e.detail
            for e in session.scalars(select(AuditEntry).where(AuditEntry.workspace_id == workspace_id))
        }
    assert entries["rfm.settings"]["window_days"] == 90
    assert entries["clv.settings"] == {"model": "pareto", "horizon_months": 6, "monthly_discount_rate": 0.01}


def test_clv_scoring_uses_the_saved_model_and_horizon(db: Database, workspace_id: int) -> None:
    actor, _ = _pool(db, workspace_id, 8)
    with db.transaction() as session:
        default = clv.score_workspace(session, actor=actor, as_of=NOW)
        default_total = default.total_clv_cents
        scoring_settings.update_settings(
            session,
            actor=actor,
            config=scoring_settings.ScoringConfig(
                model="pareto", horizon_months=3, monthly_discount_rate=0.05
            ),
        )
    assert clv_tasks.score(db, workspace_id=workspace_id, now=NOW).startswith("scored ")
    with db.reader() as session:
        models = set(
            session.scalars(select(CustomerScore.model).where(CustomerScore.workspace_id == workspace_id))
        )
        total = sum(
            session.scalars(select(CustomerScore.clv_cents).where(CustomerScore.workspace_id == workspace_id))
        )
    assert models == {"pareto"}
    assert 0 < total < default_total  # three discounted months are worth less than twelve
    with db.transaction() as session:
        with pytest.raises(ValidationFailed) as caught:
            scoring_settings.update_settings(
                session, actor=actor, config=scoring_settings.ScoringConfig(monthly_discount_rate=1.5)
            )
        assert caught.value.where == "monthly_discount_rate"


def test_settings_through_the_api(db: Database, workspace_id: int) -> None:
    client = api_client(db)
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id, role=Role.OWNER)
        analyst = make_member(session, workspace_id=workspace_id, role=Role.ANALYST)
    _pool(db, workspace_id, 9)
    body = {
        "window_days": 180,
        "method": "threshold",
        "recency_days": [10, 20, 40, 80],
        "frequency": [1, 2, 3, 4],
        "monetary_yuan": [20, 50, 90, 150],
        "layer_cut": 4,
    }
    assert client.get("/api/rfm/settings", headers=owner.headers).json()["window_days"] == 365
    assert client.put("/api/rfm/settings", json=body, headers=analyst.headers).status_code == 403
    saved = client.put("/api/rfm/settings", json=body, headers=owner.headers)
    assert saved.status_code == 200 and saved.json() == body
    bad = client.put("/api/rfm/settings", json={**body, "frequency": [3, 2, 1, 0]}, headers=owner.headers)
    assert bad.status_code == 422 and "frequency" in bad.text
    assert client.get("/api/rfm/settings", headers=analyst.headers).json() == body
    run = client.post("/api/rfm/runs", json={"now": NOW.isoformat()}, headers=owner.headers)
    assert run.status_code == 201, run.text
    assert (run.json()["window_days"], run.json()["layer_cut"]) == (180, 4)
    layers = client.get("/api/rfm/layers", headers=analyst.headers).json()
    assert [x["layer"] for x in layers] == list(rfm.LAYER_NAMES)
    assert sum(x["customers"] for x in layers) == run.json()["scored"]

    lifecycle_body = {"loyal_orders": 3, "dormant_factor": 2.5, "dormant_days": 45, "churn_days": 120}
    assert (
        client.put("/api/lifecycle/settings", json=lifecycle_body, headers=owner.headers).json()
        == lifecycle_body
    )
    wrong = client.put(
        "/api/lifecycle/settings", json={**lifecycle_body, "churn_days": 30}, headers=owner.headers
    )
    assert wrong.status_code == 422 and "churn_days" in wrong.text
    assert client.get("/api/lifecycle/settings", headers=analyst.headers).json() == lifecycle_body

    clv_body = {"model": "pareto", "horizon_months": 24, "monthly_discount_rate": 0.02}
    assert client.put("/api/clv/settings", json=clv_body, headers=analyst.headers).status_code == 403
    assert client.put("/api/clv/settings", json=clv_body, headers=owner.headers).json() == clv_body
    scored = client.post("/api/clv/runs", json={"as_of": NOW.isoformat()}, headers=owner.headers)
    assert scored.status_code == 201 and scored.json()["model"] == "pareto"


def test_settings_through_the_cli(db: Database, workspace_id: int) -> None:
    _pool(db, workspace_id, 10)
    with db.reader() as session:
        slug = str(session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id)))
    runner = CliRunner()
    shown = runner.invoke(cli, ["rfm-settings", "--workspace", slug])
    assert shown.exit_code == 0 and json.loads(shown.output)["layer_cut"] is None
    changed = runner.invoke(
        cli,
        [
            "rfm-settings",
            "--workspace",
            slug,
            "--window-days",
            "120",
            "--frequency",
            "1,2,4,8",
            "--layer-cut",
            "3",
        ],
    )
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.output) == {
        "window_days": 120,
        "method": "quintile",
        "recency_days": [15, 30, 60, 90],
        "frequency": [1, 2, 4, 8],
        "monetary_yuan": [50, 100, 200, 500],
        "layer_cut": 3,
    }
    assert runner.invoke(cli, ["rfm-settings", "--workspace", slug, "--frequency", "1,2"]).exit_code != 0
    run = runner.invoke(cli, ["rfm", "--workspace", slug, "--now", NOW.isoformat()])
    assert run.exit_code == 0 and json.loads(run.output)["window_days"] == 120
    back = runner.invoke(cli, ["rfm-settings", "--workspace", slug, "--layer-cut", "mean"])
    assert json.loads(back.output)["layer_cut"] is None

    thresholds = runner.invoke(cli, ["lifecycle-settings", "--workspace", slug, "--loyal-orders", "6"])
    assert thresholds.exit_code == 0 and json.loads(thresholds.output)["loyal_orders"] == 6
    assert (
        runner.invoke(cli, ["lifecycle-settings", "--workspace", slug, "--churn-days", "10"]).exit_code != 0
    )
    scoring = runner.invoke(cli, ["clv", "settings", "--workspace", slug, "--horizon-months", "18"])
    assert scoring.exit_code == 0 and json.loads(scoring.output)["horizon_months"] == 18
