"""`siyu broadcast create|start|pause|resume|cancel|status` from the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.core.errors import Conflict
from siyu.segments import service as segments
from siyu.workspaces import service as workspaces
from tests.broadcasts.conftest import CONTENT, audience
from tests.factories import member


def test_a_broadcast_from_the_command_line(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    segment_id, _ = audience(db, workspace_id, owner.actor, 3)
    with db.reader() as session:
        slug = workspaces.get_workspace(session, workspace_id=workspace_id).slug
        name = segments.get_segment(session, workspace_id=workspace_id, segment_id=segment_id).name
    runner = CliRunner()
    content = json.dumps({"wecom": CONTENT["wecom"], "sms": CONTENT["sms"]}, ensure_ascii=False)
    created = runner.invoke(
        app, ["broadcast", "create", "周末上新", "--segment", name, "--content", content, "--workspace", slug]
    )
    assert created.exit_code == 0, created.output
    broadcast_id = json.loads(created.output)["id"]
    started = runner.invoke(app, ["broadcast", "start", str(broadcast_id), "--wait", "--workspace", slug])
    assert started.exit_code == 0, started.output
    assert '"audience": 3' in started.output and "decided 3" in started.output
    status = runner.invoke(app, ["broadcast", "status", str(broadcast_id), "--workspace", slug])
    counts = json.loads(status.output)["counts"]
    assert sum(counts.values()) == 3 and counts["awaiting_decision"] == 0
    for verb, expected in (("pause", "paused"), ("resume", "sending"), ("cancel", "cancelled")):
        result = runner.invoke(app, ["broadcast", verb, str(broadcast_id), "--workspace", slug])
        assert result.exit_code == 0 and json.loads(result.output)["status"] == expected, result.output
    refused = runner.invoke(app, ["broadcast", "resume", str(broadcast_id), "--workspace", slug])
    assert isinstance(refused.exception, Conflict) and "not paused" in str(refused.exception)
