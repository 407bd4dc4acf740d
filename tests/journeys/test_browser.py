"""In chromium: build a journey on its page (its definition typed into the builder), start it, trigger a
customer, run the engine, reload, and see the customer counted at the next step — then at the last.

SQLite only (browser tests are deselected on PostgreSQL by tests/web/conftest.py's hook); skipped, with
the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.journeys import service
from tests.factories import make_customer
from tests.journeys.conftest import emit, event_trigger, send
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot

pytestmark = pytest.mark.browser


def _engine(db: Database, workspace_id: int, now: Any) -> None:
    with db.transaction() as session:
        service.consume_events(session, workspace_id=workspace_id, now=now)
    with db.transaction() as session:
        service.process_due(session, workspace_id=workspace_id, now=now)


def test_build_start_and_watch_a_customer_move(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="运营")
    _log_in(page, live_server, owner.email, owner.password)
    page.click("nav >> text=SOP")
    page.fill("#new-journey input[name=name]", "下单关怀")
    definition = {
        "trigger": event_trigger("order.placed"),
        "steps": [
            {"id": "wait_a_day", "kind": "wait", "days": 1},
            send("care", purpose="transactional"),
            {"id": "wait_more", "kind": "wait", "days": 2},
            send("again", purpose="transactional"),
        ],
    }
    page.fill("#new-journey textarea[name=definition]", json.dumps(definition, ensure_ascii=False))
    page.click("#new-journey button[type=submit]")
    page.wait_for_selector("#journey-flow")
    assert page.locator("#journey-flow .step").count() == 4
    journey_url = page.url
    # the builder checks on save: a step that leads nowhere is refused, naming where
    text = page.input_value("#definition")
    page.fill("#definition", text.replace('"days": 2', '"days": 2, "next": "nowhere"'))
    page.click("#journey-builder button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "wait_more" in page.inner_text("[role=alert]")
    page.goto(journey_url)
    page.click("#journey-start")
    page.wait_for_selector("#journey-pause")
    _shot(page, "journey-started")

    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id).id
    emit(db, workspace_id, "order.placed", customer)
    now = utcnow()
    _engine(db, workspace_id, now)
    page.reload()
    assert page.get_attribute("#step-wait_a_day", "data-at") == "1"
    assert page.inner_text("#count-active") == "1"
    _engine(db, workspace_id, now + timedelta(days=1))  # the day has passed: care is sent, then wait_more
    page.reload()
    assert page.get_attribute("#step-wait_a_day", "data-at") == "0"
    assert page.get_attribute("#step-wait_more", "data-at") == "1"
    assert page.get_attribute("#step-care", "data-passed") == "1"
    _engine(db, workspace_id, now + timedelta(days=3))
    page.reload()
    assert page.inner_text("#count-completed") == "1" and page.inner_text("#count-active") == "0"
    _shot(page, "journey-flow")
