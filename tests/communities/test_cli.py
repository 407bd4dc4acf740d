"""`siyu community groups|codes|sync` print the workspace's groups with their figures and its group codes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from siyu.cli import app
from siyu.communities import codes, service
from siyu.communities.schemas import GroupCodeIn
from siyu.core.db import Database
from siyu.workspaces import service as workspaces
from tests.communities.helpers import chat, png, store
from tests.factories import member
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom


def test_groups_and_codes_are_listed(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        chat_id = store(session, workspace_id, chat("命令行群", ["wmC1", "wmC2"]))
        service.save_qr(session, actor=owner.actor, chat_id=chat_id, image=png())
        code = codes.create_code(
            session, actor=owner.actor, spec=GroupCodeIn(name="入群码", chat_ids=[chat_id])
        )
        codes.hand_out(session, token=code.token)
        slug = workspaces.get_workspace(session, workspace_id=workspace_id).slug
    result = CliRunner().invoke(app, ["community", "groups", "--workspace", slug, "--days", "7"])
    assert result.exit_code == 0, result.output
    [group] = json.loads(result.output)
    assert (group["name"], group["members"], group["external_members"]) == ("命令行群", 3, 2)
    result = CliRunner().invoke(app, ["community", "codes", "--workspace", slug])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["landing_path"] == f"/g/{code.token}" and row["groups"][0]["handed_out"] == 1


def test_sync_fetches_the_groups_from_wecom(db: Database, corp: Corp, fake: FakeWecom) -> None:
    answer = chat("同步群", ["wmS1"])
    fake.group_chats[answer.pop("chat_id")] = answer
    with db.reader() as session:
        slug = workspaces.get_workspace(session, workspace_id=corp.workspace_id).slug
    result = CliRunner().invoke(app, ["community", "sync", "--workspace", slug])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"seen": 1, "created": 1, "updated": 0}
