"""In chromium: the overview draws its charts (ECharts' SVG paths) — the four trend lines, GMV share,
channel ROI, the cohort heat map, RFM layers and lifecycle stages. SQLite only; skipped, with the
reason, without chromium."""

from __future__ import annotations

from typing import Any

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from tests.overview.world import build_world
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot

pytestmark = pytest.mark.browser

CHARTS = (
    "#spark-pass_through",
    "#spark-retention",
    "#spark-conversion",
    "#spark-repurchase",
    "#revenue-chart",
    "#gmv-chart",
    "#roi-chart",
    "#cohort-chart",
    "#rfm-chart",
    "#stage-chart",
)


def test_the_overview_draws_every_chart(page: Any, live_server: str, db: Database, workspace_id: int) -> None:
    build_world(db, workspace_id)
    owner = make_login(db, workspace_id, Role.OWNER)
    _log_in(page, live_server, owner.email, owner.password)
    page.goto(f"{live_server}/overview?months=4")
    for chart in CHARTS:
        page.locator(f"{chart} svg path").first.wait_for(state="attached")
        assert page.locator(f"{chart} svg path").count() > 0, chart
    assert page.locator("#cohort-chart").get_by_text("%").first.is_visible()
    _shot(page, "overview-dashboard")
