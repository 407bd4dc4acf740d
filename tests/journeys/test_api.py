"""Journeys and the task inbox through the JSON API, the pages (zh-CN and English) and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.auth.models import Role
from siyu.cli import app as cli_app
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.journeys import service
from siyu.web.app import create_app
from siyu.workspaces import service as workspaces
from tests.factories import api_client, make_customer, member
from tests.journeys.conftest import emit, event_trigger, send
from tests.web.conftest import log_in, make_login


def test_create_from_a_template_start_and_read_the_counts(db: Database, workspace_id: int) -> None:
    client = api_client(db)
    owner = member(db, workspace_id)
    templates = client.get("/api/journeys/templates", headers=owner.headers).json()
    assert [t["key"] for t in templates] == ["welcome", "post_purchase", "dormant", "birthday"]
    created = client.post(
        "/api/journeys", json={"name": "欢迎", "template": "welcome"}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    journey = created.json()
    assert journey["status"] == "draft" and [s["step_id"] for s in journey["steps"]][:2] == ["day0", "wait1"]
    started = client.post(f"/api/journeys/{journey['id']}/start", headers=owner.headers)
    assert started.json()["status"] == "live"
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id).id
    emit(db, workspace_id, "wecom.friend_added", customer)
    with db.transaction() as session:
        service.consume_events(session, workspace_id=workspace_id)
    with db.transaction() as session:
        service.process_due(session, workspace_id=workspace_id)
    detail = client.get(f"/api/journeys/{journey['id']}", headers=owner.headers).json()
    at_step = {s["step_id"]: s["at_step"] for s in detail["steps"]}
    assert at_step["wait1"] == 1 and detail["active"] == 1 and detail["enrolled"] == 1
    stays = client.get(f"/api/journeys/{journey['id']}/enrolments", headers=owner.headers).json()
    assert [(s["customer_id"], s["step_id"], s["waiting"]) for s in stays] == [(customer, "wait1", True)]


def test_a_wrong_definition_is_refused_with_where_and_nothing_is_written(
    db: Database, workspace_id: int
) -> None:
    client = api_client(db)
    owner = member(db, workspace_id)
    body = {"name": "bad", "definition": {"trigger": event_trigger(), "steps": [send("a", next="nowhere")]}}
    refused = client.post("/api/journeys", json=body, headers=owner.headers)
    assert refused.status_code == 422
    assert refused.json()["where"] == "steps[0] (a).next" and refused.json()["hint"]
    assert client.get("/api/journeys", headers=owner.headers).json() == []


def test_new_version_through_the_api_needs_a_choice(db: Database, workspace_id: int) -> None:
    client = api_client(db)
    owner = member(db, workspace_id)
    journey = client.post(
        "/api/journeys",
        json={"name": "j", "definition": {"trigger": event_trigger(), "steps": [send("a")]}},
        headers=owner.headers,
    ).json()
    url = f"/api/journeys/{journey['id']}/definition"
    new = {"trigger": event_trigger(), "steps": [send("b")]}
    assert (
        client.put(url, json={"definition": new, "in_flight": "maybe"}, headers=owner.headers).status_code
        == 422
    )
    changed = client.put(url, json={"definition": new, "in_flight": "move"}, headers=owner.headers)
    assert changed.json()["version"] == 2
    assert client.get(f"/api/journeys/{journey['id']}", headers=owner.headers).json()["version"] == 2


def test_staff_see_and_complete_their_own_tasks_admins_see_all(db: Database, workspace_id: int) -> None:
    client = api_client(db)
    owner = member(db, workspace_id)
    staff = member(db, workspace_id, Role.STAFF)
    other = member(db, workspace_id, Role.STAFF)
    with db.transaction() as session:
        mine = make_customer(session, workspace_id=workspace_id, owner_user_id=staff.user_id).id
        theirs = make_customer(session, workspace_id=workspace_id, owner_user_id=other.user_id).id
    due = (utcnow() + timedelta(hours=1)).isoformat()
    first = client.post(
        "/api/staff-tasks", json={"customer_id": mine, "title": "回访", "due_at": due}, headers=owner.headers
    ).json()
    second = client.post(
        "/api/staff-tasks",
        json={"customer_id": theirs, "title": "回访", "due_at": due},
        headers=owner.headers,
    ).json()
    assert first["assignee_user_id"] == staff.user_id
    assert [t["id"] for t in client.get("/api/staff-tasks", headers=staff.headers).json()] == [first["id"]]
    assert len(client.get("/api/staff-tasks", headers=owner.headers).json()) == 2
    refused = client.post(f"/api/staff-tasks/{second['id']}/complete", json={}, headers=staff.headers)
    assert refused.status_code == 403
    done = client.post(
        f"/api/staff-tasks/{first['id']}/complete", json={"outcome": "已加购"}, headers=staff.headers
    )
    assert done.json()["status"] == "done"
    again = client.post(f"/api/staff-tasks/{first['id']}/complete", json={}, headers=staff.headers)
    assert again.status_code == 409
    figures = {f["user_id"]: f for f in client.get("/api/staff-tasks/figures", headers=owner.headers).json()}
    assert figures[staff.user_id]["completion_rate"] == 1.0 and figures[staff.user_id]["done_on_time"] == 1
    assert (
        figures[other.user_id]["completion_rate"] == 0.0
        and figures[other.user_id]["mean_response_hours"] is None
    )
    assert [f["user_id"] for f in client.get("/api/staff-tasks/figures", headers=staff.headers).json()] == [
        staff.user_id
    ]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pages_in_both_languages(db: Database, workspace_id: int, lang: str) -> None:
    client = TestClient(create_app(database=db))
    who = make_login(db, workspace_id, Role.OWNER, name="店长")
    client.cookies.set("lang", lang)
    token = log_in(client, who)
    listing = client.get("/journeys")
    assert listing.status_code == 200 and ("SOP 旅程" if lang == "zh-CN" else "SOP journeys") in listing.text
    refused = client.post("/journeys", data={"csrf_token": token, "name": "x", "definition": "{not json"})
    assert refused.status_code == 422 and 'role="alert"' in refused.text and "line 1" in refused.text
    created = client.post(
        "/journeys",
        data={"csrf_token": token, "name": "生日", "template": "birthday"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    page = client.get(created.headers["location"])
    assert page.status_code == 200 and 'id="step-greeting"' in page.text and "<svg" in page.text
    url = created.headers["location"]
    assert client.post(f"{url}/start", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    bad = client.post(
        f"{url}/definition", data={"csrf_token": token, "definition": '{"steps": []}', "in_flight": "stay"}
    )
    assert (
        bad.status_code == 422 and "trigger" in bad.text and '{"steps": []}' in bad.text.replace("&#34;", '"')
    )
    tasks = client.get("/tasks")
    assert tasks.status_code == 200 and ("员工待办" if lang == "zh-CN" else "Staff task inbox") in tasks.text


def test_cli_create_show_and_run(
    db: Database, workspace_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member(db, workspace_id)
    with db.reader() as session:
        slug = workspaces.get_workspace(session, workspace_id=workspace_id).slug
    definition = tmp_path / "j.json"
    definition.write_text(
        json.dumps({"trigger": event_trigger(), "steps": [{"id": "w", "kind": "wait", "days": 1}]})
    )
    runner = CliRunner()
    made = runner.invoke(
        cli_app, ["journey", "create", "CLI", "--file", str(definition), "--start", "--workspace", slug]
    )
    assert made.exit_code == 0, made.output
    journey_id = json.loads(made.output)["id"]
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id).id
    emit(db, workspace_id, "order.placed", customer)
    ran = runner.invoke(cli_app, ["journey", "run", "--workspace", slug])
    assert ran.exit_code == 0 and json.loads(ran.output)["steps"] == 1
    shown = json.loads(
        runner.invoke(cli_app, ["journey", "show", str(journey_id), "--workspace", slug]).output
    )
    assert shown["steps"][0]["at_step"] == 1
    paused = runner.invoke(cli_app, ["journey", "pause", str(journey_id), "--workspace", slug])
    assert json.loads(paused.output)["status"] == "paused"
