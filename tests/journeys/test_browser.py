"""In chromium: build a journey with the builder (trigger, a send, a wait, a condition with a step in each
branch), see the server's refusal at the step it concerns, save, start it, let two customers enter, run
the engine, and watch them move through the drawn flow: both at the wait, then one down each branch.
Also: a shipped SOP template opens in the builder, and the JSON view and the builder stay in sync.

SQLite only (browser tests are deselected on PostgreSQL by tests/web/conftest.py's hook); skipped, with
the reason, when chromium or playwright is missing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from siyu.auth.models import Role
from siyu.auth.service import actor_for
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.journeys import service
from tests.factories import make_customer, make_tag
from tests.journeys.conftest import emit
from tests.web.conftest import make_login
from tests.web.test_browser import _log_in, _shot

pytestmark = pytest.mark.browser


def _engine(db: Database, workspace_id: int, now: Any) -> None:
    with db.transaction() as session:
        service.consume_events(session, workspace_id=workspace_id, now=now)
    while True:
        with db.transaction() as session:
            if not service.process_due(session, workspace_id=workspace_id, now=now).claimed:
                return


def _add_step(page: Any, kind: str, within: str = "#jb-steps > .jb-seq") -> None:
    adder = page.locator(f"{within} > .jb-add")
    adder.locator("select").select_option(kind)
    adder.locator("button").click()


def _card(step_id: str) -> str:
    return f".jb-card[data-step-id='{step_id}']"


def _counts(page: Any, *step_ids: str) -> list[tuple[str | None, str | None]]:
    return [
        (page.get_attribute(f"#step-{s}", "data-at"), page.get_attribute(f"#step-{s}", "data-passed"))
        for s in step_ids
    ]


def test_build_start_and_watch_customers_move(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="运营")
    with db.transaction() as session:
        actor = actor_for(session, user_id=owner.user_id, workspace_id=workspace_id)
        tag_id = make_tag(session, actor=actor, name="已关怀", group="SOP").id
    _log_in(page, live_server, owner.email, owner.password)
    page.click("nav >> text=SOP")
    page.click("#new-blank")
    page.wait_for_selector("#jb-trigger")
    page.fill("#journey-name", "下单关怀")
    page.select_option("#jb-trigger select[data-role=trigger-kind]", "event")
    page.select_option("#jb-trigger select[data-role=event-type]", "order.placed")
    page.select_option("#jb-reentry select[data-role=reentry-mode]", "always")

    _add_step(page, "send")
    page.uncheck(f"{_card('send_1')} input[data-role=channel-wecom]")
    page.fill(f"{_card('send_1')} textarea[data-role=text-sms]", "感谢下单，有问题随时找我")
    page.select_option(f"{_card('send_1')} select[data-role=purpose]", "transactional")
    _add_step(page, "wait")
    page.fill(f"{_card('wait_1')} input[data-role=days]", "1")
    _add_step(page, "condition")
    page.fill(f"{_card('condition_1')} input[data-role=rule]", "has(phone)")
    _add_step(page, "tag", within=f"{_card('condition_1')} .jb-branch[data-branch=then] > .jb-seq")
    page.select_option(f"{_card('tag_1')} select[data-role=tag]", str(tag_id))
    _add_step(page, "task", within=f"{_card('condition_1')} .jb-branch[data-branch=else] > .jb-seq")
    # the task's title is left empty: the server refuses it, and the builder shows why at that step

    written = json.loads(page.input_value("#definition"))
    assert written["trigger"] == {"kind": "event", "type": "order.placed"}
    assert [s["id"] for s in written["steps"]] == ["send_1", "wait_1", "condition_1", "tag_1", "task_1"]
    condition = written["steps"][2]
    assert (condition["then"], condition["else"]) == ("tag_1", "task_1")
    assert written["steps"][3]["next"] is None and "next" not in written["steps"][4]
    assert written["steps"][0]["channels"] == ["sms"] and written["steps"][1]["days"] == 1

    page.click("#save-journey")
    page.wait_for_selector(f"{_card('task_1')} .jb-error")
    assert "title" in page.inner_text(f"{_card('task_1')} .jb-error")
    assert page.locator(f"{_card('task_1')} [data-field=title].has-error").count() == 1
    assert page.locator(".jb-card .jb-error").count() == 1  # at that step only
    _shot(page, "journey-builder-refused")
    page.fill(f"{_card('task_1')} input[data-role=title]", "电话回访")
    page.click("#save-journey")
    page.wait_for_selector("#journey-flow")
    assert page.locator("#journey-flow .step").count() == 5
    # drawn as the graph: the two branches side by side under the condition
    tag_box = page.locator("#step-tag_1 rect")
    task_box = page.locator("#step-task_1 rect")
    assert tag_box.get_attribute("y") == task_box.get_attribute("y")
    assert tag_box.get_attribute("x") != task_box.get_attribute("x")

    page.click("#journey-start")
    page.wait_for_selector("#journey-pause")
    with db.transaction() as session:
        with_phone = make_customer(session, workspace_id=workspace_id).id
        without_phone = make_customer(session, workspace_id=workspace_id, name="李四", phone="").id
    for customer_id in (with_phone, without_phone):
        emit(db, workspace_id, "order.placed", customer_id)
    now = utcnow()
    _engine(db, workspace_id, now)
    page.reload()
    assert _counts(page, "send_1", "wait_1", "condition_1") == [("0", "2"), ("2", "2"), ("0", "0")]
    assert page.inner_text("#count-active") == "2"
    _shot(page, "journey-waiting")

    _engine(db, workspace_id, now + timedelta(days=1, minutes=1))  # the day has passed
    page.reload()
    assert _counts(page, "wait_1", "condition_1", "tag_1", "task_1") == [
        ("0", "2"),
        ("0", "2"),
        ("0", "1"),
        ("0", "1"),
    ]
    assert page.inner_text("#count-completed") == "2" and page.inner_text("#count-active") == "0"
    _shot(page, "journey-flow")

    # a new version in the builder: it opens on the current definition
    page.click("#journey-edit")
    page.wait_for_selector(_card("condition_1"))
    assert page.locator(f"{_card('condition_1')} .jb-branch[data-branch=then] {_card('tag_1')}").count() == 1


def test_template_opens_in_the_builder_and_json_stays_in_sync(
    page: Any, live_server: str, db: Database, workspace_id: int
) -> None:
    owner = make_login(db, workspace_id, Role.OWNER, name="运营")
    _log_in(page, live_server, owner.email, owner.password)
    page.goto(f"{live_server}/journeys")
    page.click("#journey-templates a[data-template=dormant]")
    page.wait_for_selector(_card("watch"))
    # the wait for an order: on time it ends (done), on timeout a staff task first, then done
    assert page.locator(f"{_card('watch')} .jb-branch[data-branch=timeout] {_card('call')}").count() == 1
    assert page.locator(f"#jb-steps > .jb-seq > {_card('done')}").count() == 1
    assert page.input_value("#jb-trigger select[data-role=stage]") == "dormant"
    shipped = service.template_definition("dormant")
    written = json.loads(page.input_value("#definition"))
    assert {s["id"]: s for s in written["steps"]}["watch"]["timeout_next"] == "call"
    assert written["trigger"] == shipped["trigger"] and written["reentry"] == shipped["reentry"]

    # removing a step in the builder rewrites the JSON; editing the JSON redraws the builder
    page.click(f"{_card('call')} button[data-role=remove]")
    written = json.loads(page.input_value("#definition"))
    assert "call" not in [s["id"] for s in written["steps"]]
    page.click("#advanced summary")
    written["goal"] = {"event": "coupon.redeemed"}
    page.fill("#definition", json.dumps(written, ensure_ascii=False))
    page.wait_for_function(
        "document.querySelector('#jb-goal select[data-role=goal-event]').value === 'coupon.redeemed'"
    )
    page.click("#save-journey")
    page.wait_for_selector("#journey-flow")
    assert page.locator("#flow-goal").count() == 1
    assert page.locator("#journey-flow .step").count() == 3
