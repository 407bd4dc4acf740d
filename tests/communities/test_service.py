"""Groups synced from WeCom with members matched to the pool, joins and leaves from member-list
differences and from callbacks (with their scenes), group tags and join QR images."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.communities import service
from siyu.core.db import Database
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom import service as wecom
from tests.communities.helpers import chat, png, store
from tests.factories import api_client, make_customer, member
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom
from tests.wecom.test_callbacks import deliver


def _changes(db: Database, workspace_id: int, chat_id: str) -> list[tuple[str, str, int | None, str]]:
    with db.reader() as session:
        rows = wecom.member_changes(workspace_id=workspace_id, chat_id=chat_id).subquery()
        return [
            (r.member_id, r.change, r.scene, r.source)
            for r in session.execute(select(rows).order_by(rows.c.occurred_at, rows.c.member_id))
        ]


def test_sync_stores_groups_and_matches_members_to_the_pool(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    tag = uuid.uuid4().hex[:6]
    with db.transaction() as session:
        by_external = make_customer(
            session, workspace_id=corp.workspace_id, identities={"wecom_external_userid": f"wmA{tag}"}
        )
        by_unionid = make_customer(
            session, workspace_id=corp.workspace_id, identities={"wechat_unionid": f"un{tag}"}
        )
    answer = chat("会员群", [f"wmA{tag}", f"wmB{tag}", f"wmC{tag}"])
    answer["member_list"][2]["unionid"] = f"un{tag}"
    chat_id = answer.pop("chat_id")
    fake.group_chats[chat_id] = answer
    with db.transaction() as session:
        result = service.sync(session, actor=corp.owner.actor)
    assert (result.seen, result.created) == (1, 1)
    with db.reader() as session:
        members = service.members_of(session, workspace_id=corp.workspace_id, chat_id=chat_id)
    assert [(m.member_id, m.member_type, m.customer_id) for m in members] == [
        ("zhangsan", 1, None),
        (f"wmA{tag}", 2, by_external.id),
        (f"wmB{tag}", 2, by_unionid.id),
        (f"wmC{tag}", 2, None),
    ]
    # the first sync records every present member as a join at their own join time
    assert sorted(c[:2] for c in _changes(db, corp.workspace_id, chat_id)) == sorted(
        [("zhangsan", "join"), (f"wmA{tag}", "join"), (f"wmB{tag}", "join"), (f"wmC{tag}", "join")]
    )
    # a later sync: one left, one joined
    fake.group_chats[chat_id]["member_list"] = [
        m for m in fake.group_chats[chat_id]["member_list"] if m["userid"] != f"wmC{tag}"
    ] + [{"userid": f"wmD{tag}", "type": 2, "join_time": int(time.time()), "join_scene": 2}]
    with db.transaction() as session:
        service.sync(session, actor=corp.owner.actor)
        service.sync(session, actor=corp.owner.actor)  # again: nothing new
    changes = _changes(db, corp.workspace_id, chat_id)
    assert len(changes) == 6
    assert (f"wmC{tag}", "leave", None, "sync") in changes
    assert (f"wmD{tag}", "join", 2, "sync") in changes


def _update(chat_id: str, detail: str, **scene: int) -> str:
    extra = "".join(f"<{k}>{v}</{k}>" for k, v in scene.items())
    return (
        f"<xml><ToUserName><![CDATA[corp]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>"
        f"<ChatId><![CDATA[{chat_id}]]></ChatId><ChangeType><![CDATA[update]]></ChangeType>"
        f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail>{extra}<MemChangeCnt>1</MemChangeCnt></xml>"
    )


def test_callbacks_record_joins_and_leaves_with_their_scenes(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    answer = chat("新品群", ["wmX"])
    chat_id = answer.pop("chat_id")
    fake.group_chats[chat_id] = answer
    client = api_client(db)
    deliver(client, corp, _update(chat_id, "add_member", JoinScene=3))
    fake.group_chats[chat_id]["member_list"].append(
        {"userid": "wmY", "type": 2, "join_time": int(time.time()), "join_scene": 3}
    )
    assert deliver(client, corp, _update(chat_id, "add_member", JoinScene=3)) == (200, "success")
    fake.group_chats[chat_id]["member_list"] = [
        m for m in fake.group_chats[chat_id]["member_list"] if m["userid"] != "wmX"
    ]
    assert deliver(client, corp, _update(chat_id, "del_member", QuitScene=1)) == (200, "success")
    changes = _changes(db, corp.workspace_id, chat_id)
    assert ("wmY", "join", 3, "callback") in changes
    assert ("wmX", "leave", 1, "callback") in changes
    with db.reader() as session:
        assert [
            m.member_id for m in service.members_of(session, workspace_id=corp.workspace_id, chat_id=chat_id)
        ] == [
            "zhangsan",
            "wmY",
        ]


def test_group_tags_are_kept_once_and_removed(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        chat_id = store(session, workspace_id, chat("门店群", ["wm1"]))
        service.add_tag(session, actor=owner.actor, chat_id=chat_id, name=" 门店群 ")
        service.add_tag(session, actor=owner.actor, chat_id=chat_id, name="门店群")
        service.add_tag(session, actor=owner.actor, chat_id=chat_id, name="VIP")
        with pytest.raises(ValidationFailed) as refused:
            service.add_tag(session, actor=owner.actor, chat_id=chat_id, name="  ")
        assert refused.value.where == "name"
        with pytest.raises(NotFound):
            service.add_tag(session, actor=owner.actor, chat_id="wrNOPE", name="x")
    with db.transaction() as session:
        assert service.tags_by_group(session, workspace_id=workspace_id)[chat_id] == ["VIP", "门店群"]
        service.remove_tag(session, actor=owner.actor, chat_id=chat_id, name="VIP")
        assert service.groups_tagged(session, workspace_id=workspace_id, name="门店群") == [chat_id]
    with db.reader() as session:
        assert service.tags_by_group(session, workspace_id=workspace_id)[chat_id] == ["门店群"]


def test_a_group_qr_is_an_image_that_expires_within_seven_days(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        chat_id = store(session, workspace_id, chat("福利群", []))
        saved = service.save_qr(session, actor=owner.actor, chat_id=chat_id, image=png())
        assert saved.content_type == "image/png"
        assert timedelta(days=6, hours=23) < saved.expires_at - utcnow() <= timedelta(days=7)
        for image, expires_at, where in [
            (b"GIF89a...", None, "image"),
            (png(), utcnow() - timedelta(minutes=1), "expires_at"),
            (png(), utcnow() + timedelta(days=8), "expires_at"),
            (png(), datetime(2030, 1, 1), "expires_at"),
        ]:
            with pytest.raises(ValidationFailed) as refused, session.begin_nested():
                service.save_qr(
                    session, actor=owner.actor, chat_id=chat_id, image=image, expires_at=expires_at
                )
            assert refused.value.where == where
        again = service.save_qr(
            session,
            actor=owner.actor,
            chat_id=chat_id,
            image=png(),
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        assert again.id == saved.id  # one QR per group, replaced
