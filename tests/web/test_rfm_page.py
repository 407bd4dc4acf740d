"""The RFM and lifecycle page (分层): the layers and stages of the last runs, in both languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from siyu.auth.service import actor_for
from siyu.core.db import Database
from siyu.lifecycle import service as lifecycle
from siyu.rfm import service as rfm
from siyu.web import i18n
from tests.factories import make_customer, make_order
from tests.web.conftest import log_in, make_login


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ["RFM 八类客户", "沉睡", "阶段流转"]),
        ("en", ["The eight RFM layers", "Dormant (沉睡)", "Moves between stages"]),
    ],
)
def test_rfm_page_shows_the_layers_stages_and_flows(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    login = make_login(db, workspace_id)
    now = datetime.now(UTC)
    with db.transaction() as session:
        for days in (2, 3, 40):
            buyer = make_customer(session, workspace_id=workspace_id)
            make_order(
                session,
                workspace_id=workspace_id,
                customer_id=buyer.id,
                paid_cents=10_000,
                placed_at=now - timedelta(days=days),
            )
        make_customer(session, workspace_id=workspace_id)
        actor = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        rfm.compute_rfm(session, actor=actor, now=now)
        lifecycle.sweep(session, actor=actor, now=now)
    log_in(client, login)
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get("/rfm")
    assert page.status_code == 200, page.text[:400]
    for word in words:
        assert word in page.text
    assert page.text.count("¥100.00") >= 1 and 'id="rfm-data"' in page.text
    assert all(name in page.text for name in rfm.LAYER_NAMES)  # the table lists all eight
