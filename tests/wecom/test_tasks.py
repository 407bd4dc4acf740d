"""Background rounds and the `siyu wecom` commands against the fake WeCom."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.wecom import service as wecom
from siyu.wecom import tasks
from siyu.workspaces.models import Workspace
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom


def _slug(db: Database, workspace_id: int) -> str:
    with db.reader() as session:
        return str(session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id)))


def test_a_round_submits_due_moments_and_follows_open_tasks(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    soon = utcnow() + timedelta(minutes=5)
    with db.transaction() as session:
        scheduled = wecom.create_moment(
            session, workspace_id=corp.workspace_id, actor_user_id=None, text="晚上好", scheduled_for=soon
        )
    first = tasks.run_round(db, workspace_id=corp.workspace_id)
    assert (first.moments_submitted, first.moments_polled, first.failures) == (0, 0, [])
    later = tasks.run_round(db, workspace_id=corp.workspace_id, now=soon)
    assert later.moments_submitted == 1 and later.moments_polled == 1 and later.failures == []
    tasks.run_round(db, workspace_id=corp.workspace_id, now=soon)  # the job is done on its second poll
    with db.reader() as session:
        moment = wecom.get_moment(session, workspace_id=corp.workspace_id, moment_id=scheduled.id)
        assert moment.job_status == 3
        assert (
            set(wecom.moment_staff(session, workspace_id=corp.workspace_id, moment_id=moment.id))
            == fake.staff
        )


def test_a_refusal_is_reported_and_does_not_stop_the_round(db: Database, corp: Corp, fake: FakeWecom) -> None:
    with db.transaction() as session:
        wecom.create_moment(session, workspace_id=corp.workspace_id, actor_user_id=None, text="a")
        wecom.create_moment(session, workspace_id=corp.workspace_id, actor_user_id=None, text="b")
    fake.moment_jobs.pop(next(iter(fake.moment_jobs)))  # WeCom forgot one job
    result = tasks.run_round(db, workspace_id=corp.workspace_id)
    assert result.moments_polled == 1
    assert len(result.failures) == 1 and "40058" in result.failures[0][1]


def test_siyu_wecom_sync(db: Database, corp: Corp, fake: FakeWecom) -> None:
    fake.group_chats["wrCLI"] = {"name": "门店群", "owner": "lisi", "member_list": []}
    fake.corp_tags = [{"group_id": "g", "group_name": "偏好", "tag": [{"id": "etT", "name": "奶茶"}]}]
    result = CliRunner().invoke(app, ["wecom", "sync", "--workspace", _slug(db, corp.workspace_id)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["groups"]["created"] == 1 and summary["corp_tags"]["created"] == 1
    polled = CliRunner().invoke(app, ["wecom", "poll", "--workspace", _slug(db, corp.workspace_id)])
    assert polled.exit_code == 0 and json.loads(polled.output)["failures"] == []
