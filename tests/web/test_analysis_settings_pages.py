"""The settings forms of the RFM, lifecycle and CLV pages: shown to everyone who reads, saved by
managers only, a bad value shown back with its field and nothing saved."""

from __future__ import annotations

from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.lifecycle import service as lifecycle
from siyu.rfm import service as rfm
from tests.web.conftest import csrf_of, log_in, make_login


def test_the_pages_show_and_save_the_settings(client: TestClient, db: Database, workspace_id: int) -> None:
    owner = make_login(db, workspace_id, Role.OWNER)
    token = log_in(client, owner)
    page = client.get("/rfm")
    assert 'id="rfm-settings"' in page.text and 'id="rfm-save-settings"' in page.text
    form = {
        "csrf_token": token,
        "window_days": "90",
        "method": "threshold",
        "recency_days": "7，14, 30, 60",  # a full-width comma, as typed on a Chinese keyboard
        "frequency": "1, 2, 3, 6",
        "monetary_yuan": "30, 60, 120, 300",
        "layer_split": "score",
        "layer_cut": "4",
    }
    saved = client.post("/rfm/settings", data=form, follow_redirects=False)
    assert saved.status_code == 303
    with db.reader() as session:
        config = rfm.settings_of(session, workspace_id=workspace_id)
    assert config == rfm.RfmConfig(
        window_days=90,
        method="threshold",
        thresholds=rfm.Thresholds((7, 14, 30, 60), (1, 2, 3, 6), (30, 60, 120, 300)),
        layer_cut=4,
    )
    refused = client.post("/rfm/settings", data={**form, "frequency": "1, 2, x, 6"})
    assert refused.status_code == 422 and "frequency" in refused.text and "1, 2, x, 6" in refused.text
    with db.reader() as session:
        assert rfm.settings_of(session, workspace_id=workspace_id) == config  # kept as it was
    scored = client.post("/rfm/score", data={"csrf_token": token}, follow_redirects=False)
    assert scored.status_code == 303

    lifecycle_form = {
        "csrf_token": token,
        "loyal_orders": "5",
        "dormant_factor": "2",
        "dormant_days": "40",
        "churn_days": "150",
    }
    assert client.post("/lifecycle/settings", data=lifecycle_form, follow_redirects=False).status_code == 303
    bad = client.post("/lifecycle/settings", data={**lifecycle_form, "dormant_days": "forty"})
    assert bad.status_code == 422 and "dormant_days" in bad.text
    with db.reader() as session:
        assert lifecycle.settings_of(session, workspace_id=workspace_id) == lifecycle.Thresholds(
            5, 2.0, 40, 150
        )

    clv_form = {
        "csrf_token": token,
        "model": "pareto",
        "horizon_months": "6",
        "monthly_discount_rate": "0.02",
    }
    assert client.post("/clv/settings", data=clv_form, follow_redirects=False).status_code == 303
    assert 'value="pareto" selected' in client.get("/clv").text
    assert client.post("/clv/settings", data={**clv_form, "horizon_months": "99"}).status_code == 422


def test_an_analyst_sees_the_settings_but_cannot_save_them(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    analyst = make_login(db, workspace_id, Role.ANALYST)
    log_in(client, analyst)
    page = client.get("/rfm")
    assert 'id="rfm-settings"' in page.text and 'id="rfm-save-settings"' not in page.text
    token = csrf_of(page.text)
    refused = client.post("/rfm/settings", data={"csrf_token": token, "window_days": "30"})
    assert refused.status_code == 403
    assert client.post("/clv/settings", data={"csrf_token": token}).status_code == 403
    assert client.post("/lifecycle/settings", data={"csrf_token": token}).status_code == 403
