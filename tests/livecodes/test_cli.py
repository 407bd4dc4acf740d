"""`siyu livecodes` lists the workspace's codes with their figures."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.workspaces import service as workspaces
from tests.factories import member
from tests.livecodes.helpers import make_code, staff_members


def test_lists_codes_with_figures(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1), name="桌贴 7")
    with db.transaction() as session:
        from siyu.livecodes import scans

        scans.scan(session, token=code.token, client_ip="192.0.2.1", user_agent="x")
        slug = workspaces.get_workspace(session, workspace_id=workspace_id).slug
    result = CliRunner().invoke(app, ["livecodes", "--workspace", slug])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["name"] == "桌贴 7" and row["landing_path"] == f"/l/{code.token}" and row["scans"] == 1
    assert row["scanners"] == 1 and row["pass_through_rate"] == 0.0  # one scanner, nobody added yet
