"""Background rounds and the `siyu wecom` commands against the fake WeCom."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.tags import service as tags
from siyu.wecom import service as wecom
from siyu.wecom import tasks
from siyu.workspaces.models import Workspace
from tests.communities.helpers import png
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


def test_the_worker_submits_a_scheduled_moment_with_three_images_and_follows_it(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    fake.corp_tags = [{"group_id": "etG", "group_name": "会员", "tag": [{"id": "etGold", "name": "金卡"}]}]
    now = utcnow()
    at = now + timedelta(hours=1)
    with db.transaction() as session:
        wecom.sync_corp_tags(session, actor=corp.owner.actor)
        [gold] = [
            t for t, _group, name in tags.tag_names(session, workspace_id=corp.workspace_id) if name == "金卡"
        ]
        media = [
            wecom.upload_moment_image(
                session, workspace_id=corp.workspace_id, filename=f"p{i}.png", content=png()
            )
            for i in range(3)
        ]
        moment = wecom.create_moment(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=corp.owner.actor.user_id,
            text="冬季新品上市",
            image_media_ids=media,
            sender_userids=["zhangsan", "lisi"],
            visible_tag_ids=[gold],
            scheduled_for=at,
            now=now,
        )
        moment_id = moment.id
    assert media == fake.uploads
    assert (
        tasks.follow_up(db, workspace_id=corp.workspace_id, now=at - timedelta(seconds=1)).moments_submitted
        == 0
    )
    assert fake.count("/cgi-bin/externalcontact/add_moment_task") == 0

    first = tasks.follow_up(db, workspace_id=corp.workspace_id, now=at)
    assert (first.moments_submitted, first.moments_polled, first.failures) == (1, 1, [])
    [body] = [b for p, b in fake.calls if p == "/cgi-bin/externalcontact/add_moment_task"]
    assert body == {
        "text": {"content": "冬季新品上市"},
        "attachments": [{"msgtype": "image", "image": {"media_id": m}} for m in media],
        "visible_range": {
            "sender_list": {"user_list": ["zhangsan", "lisi"]},
            "external_contact_list": {"tag_list": ["etGold"]},
        },
    }
    # the job was still running at the first poll; polled again after 30 seconds, not before
    assert (
        tasks.follow_up(db, workspace_id=corp.workspace_id, now=at + timedelta(seconds=10)).moments_polled
        == 0
    )
    assert (
        tasks.follow_up(db, workspace_id=corp.workspace_id, now=at + timedelta(seconds=31)).moments_polled
        == 1
    )
    with db.reader() as session:
        done = wecom.get_moment(session, workspace_id=corp.workspace_id, moment_id=moment_id)
        assert done.job_status == 3 and done.moment_id and wecom.moment_state(done) == "published"
        assert wecom.moment_staff(session, workspace_id=corp.workspace_id, moment_id=moment_id) == {
            "zhangsan": 0,
            "lisi": 0,
        }
    fake.moments[str(done.moment_id)]["published"].add("zhangsan")
    tasks.follow_up(db, workspace_id=corp.workspace_id, now=at + timedelta(minutes=2))  # within 5 minutes
    with db.reader() as session:
        assert (
            wecom.moment_staff(session, workspace_id=corp.workspace_id, moment_id=moment_id)["zhangsan"] == 0
        )
    tasks.follow_up(db, workspace_id=corp.workspace_id, now=at + timedelta(minutes=6))
    with db.reader() as session:
        assert wecom.moment_staff(session, workspace_id=corp.workspace_id, moment_id=moment_id) == {
            "zhangsan": 1,
            "lisi": 0,
        }
        [row] = [
            r for r in wecom.list_moments(session, workspace_id=corp.workspace_id) if r.moment.id == moment_id
        ]
        assert (row.state, row.staff_total, row.staff_published) == ("published", 2, 1)


def test_a_moment_with_images_is_not_scheduled_past_their_lifetime(db: Database, corp: Corp) -> None:
    now = utcnow()
    with db.transaction() as session, pytest.raises(ValidationFailed) as refused:
        wecom.create_moment(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=None,
            image_media_ids=["m1"],
            scheduled_for=now + timedelta(days=4),
            now=now,
        )
    assert refused.value.where == "scheduled_for"
    with db.transaction() as session, pytest.raises(ValidationFailed, match="JPEG or PNG"):
        wecom.upload_moment_image(
            session, workspace_id=corp.workspace_id, filename="x.gif", content=b"GIF89a"
        )


def test_a_poll_wecom_refuses_waits_its_turn_instead_of_repeating_on_every_poll(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    now = utcnow()
    with db.transaction() as session:
        wecom.create_moment(session, workspace_id=corp.workspace_id, actor_user_id=None, text="a", now=now)
    fake.moment_jobs.clear()  # WeCom forgot the job: every poll is refused
    path = "/cgi-bin/externalcontact/get_moment_task_result"
    assert len(tasks.follow_up(db, workspace_id=corp.workspace_id, now=now).failures) == 1
    assert tasks.follow_up(db, workspace_id=corp.workspace_id, now=now + timedelta(seconds=5)).failures == []
    assert fake.count(path) == 1
    tasks.follow_up(db, workspace_id=corp.workspace_id, now=now + timedelta(seconds=31))
    assert fake.count(path) == 2
