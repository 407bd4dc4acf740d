"""The WeCom verbs against the fake WeCom: welcome messages, mass messages and their results, moments,
contact ways, corp tags and groups; settings never show the secret."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.tags import service as tags
from siyu.wecom import service as wecom
from siyu.wecom.client import WecomApiError
from siyu.wecom.models import WecomFollow
from tests.factories import api_client, member
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom
from tests.wecom.test_callbacks import contact_event, deliver


def befriend(
    db: Database, corp: Corp, fake: FakeWecom, userid: str = "zhangsan", state: str = ""
) -> tuple[str, int]:
    """A customer adds `userid` (the callback goes through the app): (external userid, customer id)."""
    external = "wmEXT" + uuid.uuid4().hex[:12]
    code = fake.add_friend(userid, external)
    extra = {"WelcomeCode": code, **({"State": state} if state else {})}
    assert (
        deliver(
            api_client(db),
            corp,
            contact_event("add_external_contact", userid=userid, external=external, **extra),
        )[0]
        == 200
    )
    with db.reader() as session:
        follow = session.scalar(select(WecomFollow).where(WecomFollow.external_userid == external))
        assert follow is not None and follow.customer_id is not None
        return external, follow.customer_id


# --- settings ----------------------------------------------------------------------------------------


def test_settings_api_never_shows_the_secret_and_keeps_it_when_left_empty(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    client = api_client(db)
    shown = client.get("/api/wecom/settings", headers=corp.owner.headers)
    assert shown.status_code == 200
    assert fake.secret not in shown.text and shown.json()["has_secret"] is True
    assert shown.json()["callback_url"].endswith(corp.callback_path)
    body = {
        "corp_id": fake.corp_id,
        "token": "NewToken1",
        "encoding_aes_key": corp.crypt_key(),
        "api_base_url": fake.url,
    }
    changed = client.put("/api/wecom/settings", json=body, headers=corp.owner.headers)
    assert changed.status_code == 200 and changed.json()["token"] == "NewToken1"
    with db.reader() as session:
        with wecom.client_for(session, workspace_id=corp.workspace_id) as api:
            api.post("/cgi-bin/externalcontact/groupchat/list", {"limit": 1})  # the kept secret still works
        audits = list(session.scalars(select(AuditEntry).where(AuditEntry.workspace_id == corp.workspace_id)))
    assert all(fake.secret not in str(a.detail) for a in audits)
    with db.transaction() as session:  # as the settings page saves: no API address given
        kept = wecom.save_settings(
            session,
            actor=corp.owner.actor,
            corp_id=fake.corp_id,
            token="PageTok1",
            encoding_aes_key=corp.crypt_key(),
        )
    assert kept.api_base_url == fake.url and kept.has_secret
    bad = client.put(
        "/api/wecom/settings", json={**body, "encoding_aes_key": "short"}, headers=corp.owner.headers
    )
    assert bad.status_code == 422 and bad.json()["where"] == "encoding_aes_key"


def test_settings_need_the_manage_permission(db: Database, corp: Corp) -> None:
    analyst = member(db, corp.workspace_id, role="analyst")
    assert api_client(db).get("/api/wecom/settings", headers=analyst.headers).status_code == 403
    with db.transaction() as session, pytest.raises(PermissionDenied):
        wecom.view_settings(session, actor=analyst.actor)


def test_a_first_save_needs_the_secret(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session, pytest.raises(ValidationFailed, match="secret"):
        wecom.save_settings(
            session, actor=owner.actor, corp_id="ww1", token="t1", encoding_aes_key="A" * 43, secret=""
        )


def test_staff_are_mapped_to_members(db: Database, corp: Corp) -> None:
    client = api_client(db)
    mapped = client.put(
        "/api/wecom/staff",
        json={"wecom_userid": "zhangsan", "user_id": corp.owner.user_id},
        headers=corp.owner.headers,
    )
    assert mapped.status_code == 200 and mapped.json()["user_id"] == corp.owner.user_id
    stranger = client.put(
        "/api/wecom/staff", json={"wecom_userid": "lisi", "user_id": 10**9}, headers=corp.owner.headers
    )
    assert stranger.status_code == 404
    with db.reader() as session:
        assert wecom.staff_user_ids(
            session, workspace_id=corp.workspace_id, wecom_userids=["zhangsan", "lisi"]
        ) == {"zhangsan": corp.owner.user_id}


# --- welcome messages -------------------------------------------------------------------------------


def test_a_welcome_message_goes_out_once_within_twenty_seconds(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    external, _ = befriend(db, corp, fake)
    with db.transaction() as session:
        wecom.send_welcome(
            session,
            workspace_id=corp.workspace_id,
            wecom_userid="zhangsan",
            external_userid=external,
            text="欢迎！",
        )
    assert fake.count("/cgi-bin/externalcontact/send_welcome_msg") == 1
    with db.transaction() as session, pytest.raises(Conflict, match="sent already"):
        wecom.send_welcome(
            session,
            workspace_id=corp.workspace_id,
            wecom_userid="zhangsan",
            external_userid=external,
            text="again",
        )
    assert fake.count("/cgi-bin/externalcontact/send_welcome_msg") == 1


def test_a_welcome_after_the_window_is_refused_before_calling_wecom(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    external, _ = befriend(db, corp, fake)
    with db.transaction() as session, pytest.raises(Conflict, match="welcome window has passed"):
        wecom.send_welcome(
            session,
            workspace_id=corp.workspace_id,
            wecom_userid="zhangsan",
            external_userid=external,
            text="late",
            now=utcnow() + timedelta(seconds=25),
        )
    assert fake.count("/cgi-bin/externalcontact/send_welcome_msg") == 0


def test_a_welcome_code_wecom_no_longer_takes_is_its_error(db: Database, corp: Corp, fake: FakeWecom) -> None:
    external, _ = befriend(db, corp, fake)
    fake.welcome_codes.clear()  # another app used it first
    with db.transaction() as session, pytest.raises(WecomApiError) as refused:
        wecom.send_welcome(
            session,
            workspace_id=corp.workspace_id,
            wecom_userid="zhangsan",
            external_userid=external,
            text="hi",
        )
    assert refused.value.errcode == 41051


# --- mass messages ------------------------------------------------------------------------------------


def test_mass_message_to_friends_with_its_results(db: Database, corp: Corp, fake: FakeWecom) -> None:
    friends = [befriend(db, corp, fake, "zhangsan") for _ in range(2)] + [befriend(db, corp, fake, "lisi")]
    with db.transaction() as session:
        message = wecom.send_mass_message(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=corp.owner.user_id,
            text="新品上市",
            customer_ids=[c for _, c in friends],
            external_userids=["wmNOTAFRIEND"],
            request_key="campaign-1",
        )
        message_id = message.id
        assert message.msgid and message.fail_list == ["wmNOTAFRIEND"]
        # a retried request returns the same task, without a second add_msg_template
        again = wecom.send_mass_message(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=None,
            text="新品上市",
            customer_ids=[1],
            request_key="campaign-1",
        )
        assert again.id == message_id
    assert fake.count("/cgi-bin/externalcontact/add_msg_template") == 1
    with db.transaction() as session:
        status = wecom.poll_mass_message_results(
            session, workspace_id=corp.workspace_id, message_id=message_id
        )
    assert (status.staff_total, status.staff_sent, status.recipients_by_status) == (2, 0, {0: 3})
    fake.mass_messages[message.msgid]["sent"].add("zhangsan")  # zhangsan confirms it in WeCom
    with db.transaction() as session:
        status = wecom.poll_mass_message_results(
            session, workspace_id=corp.workspace_id, message_id=message_id
        )
    assert (status.staff_total, status.staff_sent, status.recipients_by_status) == (2, 1, {1: 2, 0: 1})


def test_mass_message_to_groups_needs_a_sender(db: Database, corp: Corp, fake: FakeWecom) -> None:
    fake.group_chats["wrG1"] = {"name": "群", "owner": "lisi", "member_list": []}
    fake.group_chats["wrG2"] = {"name": "群二", "owner": "lisi", "member_list": []}
    with db.transaction() as session:
        with pytest.raises(ValidationFailed, match="sender"):
            wecom.send_mass_message(
                session, workspace_id=corp.workspace_id, actor_user_id=None, chat_type="group", text="x"
            )
        message = wecom.send_mass_message(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=None,
            chat_type="group",
            text="群发",
            sender="lisi",
            chat_ids=["wrG2"],
        )
        assert message.request["chat_id_list"] == ["wrG2"]
        fake.mass_messages[message.msgid]["sent"].add("lisi")
        status = wecom.poll_mass_message_results(
            session, workspace_id=corp.workspace_id, message_id=message.id
        )
    assert status.recipients_by_status == {1: 1}


def test_mass_message_refuses_what_wecom_would(db: Database, corp: Corp) -> None:
    with db.transaction() as session:
        with pytest.raises(ValidationFailed, match="none of the recipients"):
            wecom.send_mass_message(
                session, workspace_id=corp.workspace_id, actor_user_id=None, text="x", customer_ids=[123]
            )
        with pytest.raises(ValidationFailed, match="empty"):
            wecom.send_mass_message(
                session, workspace_id=corp.workspace_id, actor_user_id=None, external_userids=["wm1"]
            )
        with pytest.raises(ValidationFailed, match="at most 9"):
            wecom.send_mass_message(
                session,
                workspace_id=corp.workspace_id,
                actor_user_id=None,
                external_userids=["wm1"],
                attachments=[{"msgtype": "image", "image": {"media_id": str(i)}} for i in range(10)],
            )


# --- moments --------------------------------------------------------------------------------------------


def test_a_moment_job_and_each_staff_members_publish_status(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    fake.corp_tags = [{"group_id": "etG", "group_name": "会员", "tag": [{"id": "etVIP", "name": "VIP"}]}]
    with db.transaction() as session:
        wecom.sync_corp_tags(session, actor=corp.owner.actor)
        [vip] = [
            tag_id
            for tag_id, group, name in tags.tag_names(session, workspace_id=corp.workspace_id)
            if name == "VIP"
        ]
        with pytest.raises(NotFound, match="not WeCom corp tags"):
            wecom.create_moment(
                session, workspace_id=corp.workspace_id, actor_user_id=None, text="x", visible_tag_ids=[-5]
            )
        moment = wecom.create_moment(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=None,
            text="秋季新品",
            image_media_ids=["m1", "m2"],
            sender_userids=["zhangsan", "lisi", "gone"],
            visible_tag_ids=[vip],
        )
        moment_id = moment.id
        assert moment.jobid and moment.request["visible_range"]["external_contact_list"] == {
            "tag_list": ["etVIP"]
        }
        assert (
            wecom.poll_moment_result(session, workspace_id=corp.workspace_id, moment_id=moment_id).job_status
            == 2
        )
        done = wecom.poll_moment_result(session, workspace_id=corp.workspace_id, moment_id=moment_id)
        assert done.job_status == 3 and done.moment_id
        assert done.result["invalid_sender_list"] == {"user_list": ["gone"]}
        assert wecom.moment_staff(session, workspace_id=corp.workspace_id, moment_id=moment_id) == {
            "zhangsan": 0,
            "lisi": 0,
        }
    fake.moments[done.moment_id]["published"].add("lisi")
    with db.transaction() as session:
        wecom.poll_moment_result(session, workspace_id=corp.workspace_id, moment_id=moment_id)
        assert wecom.moment_staff(session, workspace_id=corp.workspace_id, moment_id=moment_id) == {
            "zhangsan": 0,
            "lisi": 1,
        }


def test_a_scheduled_moment_is_submitted_when_due(db: Database, corp: Corp, fake: FakeWecom) -> None:
    later = utcnow() + timedelta(hours=2)
    with db.transaction() as session:
        moment = wecom.create_moment(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=None,
            link={"title": "活动", "url": "https://x.cn/a", "media_id": "m"},
            scheduled_for=later,
        )
        assert moment.jobid is None
        assert wecom.publish_due_moments(session, workspace_id=corp.workspace_id) == []
        [due] = wecom.publish_due_moments(session, workspace_id=corp.workspace_id, now=later)
        assert due.id == moment.id and due.jobid
    assert fake.count("/cgi-bin/externalcontact/add_moment_task") == 1


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"image_media_ids": [str(i) for i in range(10)]}, "at most 9"),
        ({"image_media_ids": ["m"], "video_media_id": "v"}, "not several kinds"),
        ({"link": {"url": "ftp://x", "media_id": "m"}}, "url"),
        ({}, "empty"),
    ],
)
def test_a_moment_wecom_would_refuse_is_refused_here(
    db: Database, corp: Corp, kwargs: dict, problem: str
) -> None:
    with db.transaction() as session, pytest.raises(ValidationFailed, match=problem):
        wecom.create_moment(session, workspace_id=corp.workspace_id, actor_user_id=None, **kwargs)


def test_a_moment_with_a_video_uploads_an_mp4_and_refuses_other_files(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    mp4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
    with db.transaction() as session:
        media_id = wecom.upload_moment_video(
            session, workspace_id=corp.workspace_id, filename="clip.mp4", content=mp4
        )
        assert media_id in fake.uploads
        moment = wecom.create_moment(
            session, workspace_id=corp.workspace_id, actor_user_id=None, text="新品", video_media_id=media_id
        )
        assert moment.request["attachments"] == [{"msgtype": "video", "video": {"media_id": media_id}}]
        with pytest.raises(ValidationFailed, match="not an MP4"):
            wecom.upload_moment_video(
                session, workspace_id=corp.workspace_id, filename="a.avi", content=b"RIFF" + b"\x00" * 64
            )
        with pytest.raises(ValidationFailed, match="up to 10 MB"):
            wecom.upload_moment_video(
                session,
                workspace_id=corp.workspace_id,
                filename="big.mp4",
                content=mp4 + b"\x00" * (10 * 1024 * 1024),
            )
        with pytest.raises(ValidationFailed, match="not several kinds"):
            wecom.create_moment(
                session,
                workspace_id=corp.workspace_id,
                actor_user_id=None,
                video_media_id=media_id,
                image_media_ids=[media_id],
            )


# --- contact ways -------------------------------------------------------------------------------------


def test_contact_way_kept_in_sync_and_state_checked(db: Database, corp: Corp, fake: FakeWecom) -> None:
    with db.transaction() as session:
        way = wecom.create_contact_way(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=None,
            state="mall-sh-01",
            users=["zhangsan"],
            remark="门店",
        )
        assert way.config_id in fake.contact_ways and way.qr_code
        wecom.update_contact_way(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=None,
            contact_way_id=way.id,
            users=["zhangsan", "lisi"],
            state="mall-sh-02",
        )
        assert fake.contact_ways[way.config_id]["user"] == ["zhangsan", "lisi"]
        assert fake.contact_ways[way.config_id]["state"] == "mall-sh-02" and way.state == "mall-sh-02"
        with pytest.raises(ValidationFailed, match="at most 30"):
            wecom.create_contact_way(
                session,
                workspace_id=corp.workspace_id,
                actor_user_id=None,
                state="x" * 31,
                users=["zhangsan"],
            )
        with pytest.raises(Conflict, match="mall-sh-02"):
            wecom.create_contact_way(
                session,
                workspace_id=corp.workspace_id,
                actor_user_id=None,
                state="mall-sh-02",
                users=["lisi"],
            )
        with pytest.raises(WecomApiError) as refused:
            wecom.create_contact_way(
                session, workspace_id=corp.workspace_id, actor_user_id=None, state="ok-1", users=["nobody"]
            )
        assert refused.value.errcode == 40003
        wecom.delete_contact_way(
            session, workspace_id=corp.workspace_id, actor_user_id=None, contact_way_id=way.id
        )
        assert way.config_id not in fake.contact_ways
        with pytest.raises(NotFound):
            wecom.get_contact_way(session, workspace_id=corp.workspace_id, contact_way_id=way.id)


# --- corp tags and groups -------------------------------------------------------------------------------


def test_corp_tags_become_siyu_tags_and_mark_tag_uses_their_wecom_ids(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    fake.corp_tags = [
        {
            "group_id": "etG1",
            "group_name": "会员等级",
            "tag": [{"id": "etVIP", "name": "VIP"}, {"id": "etNEW", "name": "新客"}],
        }
    ]
    external, _ = befriend(db, corp, fake)
    with db.transaction() as session:
        result = wecom.sync_corp_tags(session, actor=corp.owner.actor)
        assert (result.groups, result.tags, result.created) == (1, 2, 2)
        assert (
            wecom.sync_corp_tags(session, actor=corp.owner.actor).created == 0
        )  # a second sync adds nothing
        names = {
            name: tag_id
            for tag_id, group, name in tags.tag_names(session, workspace_id=corp.workspace_id)
            if group == "会员等级"
        }
        assert set(names) == {"VIP", "新客"}
        wecom.mark_tag(
            session,
            workspace_id=corp.workspace_id,
            wecom_userid="zhangsan",
            external_userid=external,
            add_tag_ids=[names["VIP"]],
        )
        with pytest.raises(NotFound, match="not WeCom corp tags"):
            wecom.mark_tag(
                session,
                workspace_id=corp.workspace_id,
                wecom_userid="zhangsan",
                external_userid=external,
                add_tag_ids=[-1],
            )
    assert fake.contacts[external]["tags"] == ["etVIP"]


def test_groups_sync_page_by_page(db: Database, corp: Corp, fake: FakeWecom) -> None:
    for i in range(3):
        fake.group_chats[f"wrSYNC{i}"] = {
            "name": f"群{i}",
            "owner": "zhangsan",
            "member_list": [{"userid": "wm", "type": 2}] * i,
        }
    with db.transaction() as session:
        from siyu.wecom.service import groups

        groups.PAGE, saved = 2, groups.PAGE  # two pages of WeCom's cursor
        try:
            first = wecom.sync_groups(session, workspace_id=corp.workspace_id)
        finally:
            groups.PAGE = saved
        assert (first.seen, first.created) == (3, 3)
        assert wecom.sync_groups(session, workspace_id=corp.workspace_id).updated == 3
        synced = {
            g.chat_id: g.external_member_count
            for g in wecom.list_groups(session, workspace_id=corp.workspace_id)
        }
    assert synced == {"wrSYNC0": 0, "wrSYNC1": 1, "wrSYNC2": 2}


def test_a_merged_friend_counts_for_the_survivor_once_relinked(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    from siyu.customers import identity
    from tests.factories import make_customer

    _, friend_id = befriend(db, corp, fake)
    with db.transaction() as session:
        survivor = make_customer(session, workspace_id=corp.workspace_id, name="会员")
        identity.merge_customers(
            session,
            workspace_id=corp.workspace_id,
            survivor_id=survivor.id,
            merged_id=friend_id,
            reason="same person",
            actor_user_id=None,
        )
        survivor_id = survivor.id
    with db.transaction() as session:
        assert wecom.is_friend(session, workspace_id=corp.workspace_id, customer_ids=[survivor_id]) == set()
        assert wecom.relink_follows(session, workspace_id=corp.workspace_id) == 1
        assert wecom.is_friend(session, workspace_id=corp.workspace_id, customer_ids=[survivor_id]) == {
            survivor_id
        }
        assert wecom.relink_follows(session, workspace_id=corp.workspace_id) == 0
