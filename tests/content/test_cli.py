"""`siyu content`: the SMS length of a text, and the clicks of a source."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from siyu.cli import app
from siyu.content import service as content
from siyu.core.db import Database
from siyu.reach import service as reach
from siyu.workspaces import service as workspaces
from tests.factories import unique
from tests.reach.conftest import NOON, reachable


def test_sms_length() -> None:
    result = CliRunner().invoke(app, ["content", "sms-length", "你" * 66, "--sign", "品牌"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"encoding": "ucs2", "length": 70, "parts": 1, "per_part": 70}


def test_clicks_of_a_source(db: Database, workspace_id: int) -> None:
    ref = unique("cli")
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id, grants=("sms",))
        reach.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=[customer],
            content={"sms": {"text": "{{ link('https://a.example.com/') }}"}}, purpose="marketing",
            channel_preference=["sms"], personalise=True, now=NOON,
        )  # fmt: skip
        slug = workspaces.get_workspace(session, workspace_id=workspace_id).slug
        counts = content.clicks(session, workspace_id=workspace_id, source="broadcast", source_ref=ref)
    assert counts.links == 1
    result = CliRunner().invoke(app, ["content", "clicks", "broadcast", ref, "--workspace", slug])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["links"] == 1 and json.loads(result.output)["clicked_links"] == 0
