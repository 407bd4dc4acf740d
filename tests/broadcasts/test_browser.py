"""In chromium: create a broadcast (群发) to a segment on its page, send it, run the worker, and watch
the progress page count the messages out.

SQLite only (browser tests are deselected on PostgreSQL by tests/web/conftest.py's hook); skipped, with
the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

from typing import Any

import pytest

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.broadcasts import tasks
from siyu.core.db import Database
from siyu.reach import service as reach
from tests.broadcasts.conftest import Recording, audience, worker
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot

pytestmark = pytest.mark.browser


def test_create_send_and_watch_the_counts(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="运营")
    with db.transaction() as session:
        actor = auth.actor_for(session, user_id=owner.user_id, workspace_id=workspace_id)
        # whatever the time of day the test runs at: no quiet hours, so nothing is deferred
        reach.update_policy(session, actor=actor, changes={"quiet_start": None, "quiet_end": None})
    segment_id, friends = audience(db, workspace_id, actor, 3)
    with db.transaction() as session:
        from siyu.segments import service as segments

        segment = segments.get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
        name = segment.name
    _log_in(page, live_server, owner.email, owner.password)

    page.click("nav >> text=群发")
    page.click("#new-broadcast")
    page.fill("input[name=name]", "春茶上新")
    page.select_option("#segment-picker", label=name)
    page.select_option("select[name=channel_1]", "wecom")
    page.select_option("select[name=channel_2]", "sms")
    page.fill("textarea[name=wecom_text]", "春茶上新，老客 9 折")
    page.fill("textarea[name=sms_text]", "春茶上新，老客 9 折 退订回T")
    _shot(page, "broadcast-form")
    page.click("#save-and-send")
    page.wait_for_selector("#progress-counts")
    assert page.inner_text("#audience-size") == "3"
    assert page.inner_text("[data-count=awaiting_decision]") == "3"

    tasks.run_due(db)  # the worker's periodic task decides the audience …
    adapter = Recording()
    worker(db, workspace_id, adapter).drain()  # … and the worker sends it
    assert sorted(c.customer_id for c in adapter.calls) == sorted(friends)
    page.wait_for_function("document.querySelector('[data-count=sent]').textContent === '3'")
    assert page.inner_text("[data-count=awaiting_decision]") == "0"
    page.wait_for_selector("#progress-chart svg")  # ECharts drew the bar
    tasks.run_due(db)  # nothing is left to go: the broadcast is sent, and the page reloads to say so
    page.wait_for_function("document.getElementById('broadcast-status').textContent.trim() === '已完成'")
    _shot(page, "broadcast-detail")
