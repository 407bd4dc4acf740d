"""The callback endpoint end to end: WeCom's requests (signed and encrypted as WeCom does) through the
app, into customers, events, friend relations and domain events; retries change nothing."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from siyu.core.config import Settings
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.customers.models import Customer, Identity
from siyu.events.models import CustomerEvent
from siyu.livecodes import service as livecodes
from siyu.livecodes.models import LiveCodeAdd
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.web.app import create_app
from siyu.wecom import service as wecom
from siyu.wecom.crypto import MessageCrypt, signature
from siyu.wecom.models import WecomFollow, WecomGroupChat
from tests.factories import api_client
from tests.wecom import test_crypto as vectors
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom


def contact_event(
    change: str, *, userid: str, external: str, created: int | None = None, **extra: str
) -> str:
    fields = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in extra.items())
    return (
        "<xml><ToUserName><![CDATA[corp]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
        f"<UserID><![CDATA[{userid}]]></UserID><ExternalUserID><![CDATA[{external}]]></ExternalUserID>"
        f"{fields}</xml>"
    )


def chat_event(change: str, chat_id: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[corp]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>"
        f"<ChatId><![CDATA[{chat_id}]]></ChatId><ChangeType><![CDATA[{change}]]></ChangeType></xml>"
    )


def deliver(
    client: TestClient,
    corp: Corp,
    message: str,
    *,
    crypt: MessageCrypt | None = None,
    timestamp: int | None = None,
) -> tuple[int, str]:
    """POST a message as WeCom would: encrypted into <xml><Encrypt>, signed in the query string."""
    crypt = crypt or corp.crypt
    encrypt = crypt.encrypt(message)
    stamp, nonce = str(timestamp or int(time.time())), uuid.uuid4().hex[:10]
    body = (
        f"<xml><ToUserName><![CDATA[{crypt.receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        "<AgentID><![CDATA[1000002]]></AgentID></xml>"
    )
    params = {
        "msg_signature": signature(crypt.token, stamp, nonce, encrypt),
        "timestamp": stamp,
        "nonce": nonce,
    }
    response = client.post(
        corp.callback_path, params=params, content=body, headers={"Content-Type": "text/xml"}
    )
    return response.status_code, response.text


def _events(db: Database, workspace_id: int, type: str) -> list[CustomerEvent]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(CustomerEvent).where(
                    CustomerEvent.workspace_id == workspace_id, CustomerEvent.type == type
                )
            )
        )


def _domain(db: Database, workspace_id: int, type: str) -> list[DomainEvent]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(DomainEvent).where(DomainEvent.workspace_id == workspace_id, DomainEvent.type == type)
            )
        )


def test_url_verification_answers_the_decrypted_echostr(db: Database, corp: Corp) -> None:
    client = api_client(db)
    echo = "8473629104857362910"
    encrypted = corp.crypt.encrypt(echo)
    stamp, nonce = str(int(time.time())), "5511"
    params = {
        "msg_signature": signature(corp.crypt.token, stamp, nonce, encrypted),
        "timestamp": stamp,
        "nonce": nonce,
        "echostr": encrypted,
    }
    response = client.get(corp.callback_path, params=params)
    assert response.status_code == 200 and response.text == echo
    params["msg_signature"] = "0" * 40
    refused = client.get(corp.callback_path, params=params)
    assert refused.status_code == 401 and "msg_signature" in refused.json()["message"]


def test_url_verification_with_the_official_sample_request(
    db: Database, workspace_id: int, fake: FakeWecom
) -> None:
    from tests.factories import member

    owner = member(db, workspace_id)
    with db.transaction() as session:
        view = wecom.save_settings(
            session,
            actor=owner.actor,
            corp_id=vectors.CORP_ID,
            secret="s",
            token=vectors.TOKEN,
            encoding_aes_key=vectors.ENCODING_AES_KEY,
        )
    # the sample was signed in 2014: this app accepts timestamps that old, so only the crypto is tested
    app = create_app(database=db, settings=Settings(webhook_tolerance_seconds=10**10))
    response = TestClient(app).get(
        view.callback_path,
        params={
            "msg_signature": vectors.VERIFY_MSG_SIGNATURE,
            "timestamp": vectors.VERIFY_TIMESTAMP,
            "nonce": vectors.VERIFY_NONCE,
            "echostr": vectors.VERIFY_ECHOSTR,
        },
    )
    assert response.status_code == 200 and response.text == vectors.VERIFY_PLAINTEXT
    # and with the server's usual 300 s, the same request is a replay
    stale = api_client(db).get(
        view.callback_path,
        params={
            "msg_signature": vectors.VERIFY_MSG_SIGNATURE,
            "timestamp": vectors.VERIFY_TIMESTAMP,
            "nonce": vectors.VERIFY_NONCE,
            "echostr": vectors.VERIFY_ECHOSTR,
        },
    )
    assert stale.status_code == 401 and "stale" in stale.json()["message"]


def test_a_new_friend_becomes_a_customer_with_event_relation_and_attribution(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    with db.transaction() as session:
        way = wecom.create_contact_way(
            session,
            workspace_id=corp.workspace_id,
            actor_user_id=None,
            state="store-sh-01",
            users=["zhangsan"],
        )
    external = "wmEXT" + uuid.uuid4().hex[:12]
    code = fake.add_friend("zhangsan", external, name="王小明", unionid="oUNION" + uuid.uuid4().hex[:8])
    client = api_client(db)
    message = contact_event(
        "add_external_contact", userid="zhangsan", external=external, State="store-sh-01", WelcomeCode=code
    )
    assert deliver(client, corp, message) == (200, "success")

    [event] = _events(db, corp.workspace_id, "wecom.friend_added")
    assert event.properties["state"] == "store-sh-01"
    assert event.properties["contact_way_id"] == way.id
    assert event.properties["staff"] == "zhangsan" and event.properties["name"] == "王小明"
    with db.reader() as session:
        kinds = dict(
            session.execute(
                select(Identity.kind, Identity.value).where(Identity.customer_id == event.customer_id)
            )
            .tuples()
            .all()
        )
        follow = session.scalar(select(WecomFollow).where(WecomFollow.external_userid == external))
        assert wecom.is_friend(session, workspace_id=corp.workspace_id, customer_ids=[event.customer_id]) == {
            event.customer_id
        }
    assert kinds["wecom_external_userid"] == external
    assert kinds["wechat_unionid"].startswith("oUNION")  # fetched with externalcontact/get
    assert follow is not None and follow.customer_id == event.customer_id
    assert follow.contact_way_id == way.id and follow.welcome_code == code and follow.removed_at is None
    [added] = _domain(db, corp.workspace_id, "wecom.friend_added")
    assert added.customer_id == event.customer_id


def test_a_retried_callback_changes_nothing(db: Database, corp: Corp, fake: FakeWecom) -> None:
    external = "wmEXT" + uuid.uuid4().hex[:12]
    fake.add_friend("lisi", external)
    client = api_client(db)
    message = contact_event(
        "add_external_contact", userid="lisi", external=external, created=int(time.time())
    )
    for _ in range(3):  # WeCom retries up to three times, each freshly encrypted and signed
        assert deliver(client, corp, message) == (200, "success")
    assert len(_events(db, corp.workspace_id, "wecom.friend_added")) == 1
    assert len(_domain(db, corp.workspace_id, "wecom.friend_added")) == 1
    with db.reader() as session:
        follows = session.scalar(
            select(func.count()).select_from(WecomFollow).where(WecomFollow.workspace_id == corp.workspace_id)
        )
    assert follows == 1


def test_the_same_callback_delivered_at_once_is_applied_once(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    external = "wmEXT" + uuid.uuid4().hex[:12]
    fake.add_friend("zhangsan", external)
    message = contact_event("add_external_contact", userid="zhangsan", external=external)
    answers: list[tuple[int, str]] = []

    def send() -> None:
        with api_client(db) as client:
            answers.append(deliver(client, corp, message))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [(200, "success")] * 4
    assert len(_events(db, corp.workspace_id, "wecom.friend_added")) == 1
    assert len(_domain(db, corp.workspace_id, "wecom.friend_added")) == 1


def test_the_customer_deleting_the_staff_member_is_the_churn_alert(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    external = "wmEXT" + uuid.uuid4().hex[:12]
    fake.add_friend("zhangsan", external)
    client = api_client(db)
    deliver(client, corp, contact_event("add_external_contact", userid="zhangsan", external=external))
    assert deliver(client, corp, contact_event("del_follow_user", userid="zhangsan", external=external)) == (
        200,
        "success",
    )
    [churn] = _events(db, corp.workspace_id, "wecom.staff_deleted")
    [alert] = _domain(db, corp.workspace_id, "wecom.staff_deleted")
    assert alert.customer_id == churn.customer_id and alert.payload["staff"] == "zhangsan"
    with db.reader() as session:
        follow = session.scalar(select(WecomFollow).where(WecomFollow.external_userid == external))
        assert follow is not None and follow.removed_by == "customer" and follow.removed_at is not None
        assert (
            wecom.is_friend(session, workspace_id=corp.workspace_id, customer_ids=[churn.customer_id])
            == set()
        )


def test_the_staff_member_deleting_the_customer_is_recorded_as_such(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    external = "wmEXT" + uuid.uuid4().hex[:12]
    fake.add_friend("lisi", external)
    client = api_client(db)
    deliver(client, corp, contact_event("add_external_contact", userid="lisi", external=external))
    deliver(client, corp, contact_event("edit_external_contact", userid="lisi", external=external))
    deliver(
        client,
        corp,
        contact_event("del_external_contact", userid="lisi", external=external, Source="DELETE_BY_TRANSFER"),
    )
    [deleted] = _events(db, corp.workspace_id, "wecom.friend_deleted")
    assert deleted.properties["source"] == "DELETE_BY_TRANSFER"
    assert len(_events(db, corp.workspace_id, "wecom.contact_edited")) == 1
    assert len(_domain(db, corp.workspace_id, "wecom.friend_deleted")) == 1
    assert _domain(db, corp.workspace_id, "wecom.staff_deleted") == []
    with db.reader() as session:
        follow = session.scalar(select(WecomFollow).where(WecomFollow.external_userid == external))
    assert follow is not None and follow.removed_by == "staff"


def test_group_chat_callbacks_keep_the_group_current(db: Database, corp: Corp, fake: FakeWecom) -> None:
    chat_id = "wr" + uuid.uuid4().hex[:12]
    fake.group_chats[chat_id] = {
        "name": "会员福利群",
        "owner": "zhangsan",
        "create_time": 1_700_000_000,
        "member_list": [
            {"userid": "zhangsan", "type": 1},
            {"userid": "wmA", "type": 2},
            {"userid": "wmB", "type": 2},
        ],
    }
    client = api_client(db)
    assert deliver(client, corp, chat_event("create", chat_id)) == (200, "success")
    with db.reader() as session:
        group = session.scalar(select(WecomGroupChat).where(WecomGroupChat.chat_id == chat_id))
        assert group is not None and group.name == "会员福利群" and group.external_member_count == 2
    deliver(client, corp, chat_event("dismiss", chat_id))
    with db.reader() as session:
        group = session.scalar(select(WecomGroupChat).where(WecomGroupChat.chat_id == chat_id))
        assert group is not None and group.dismissed_at is not None


@pytest.mark.parametrize("problem", ["signature", "corp", "stale", "key"])
def test_bad_callbacks_are_refused_and_write_nothing(
    db: Database, corp: Corp, fake: FakeWecom, problem: str
) -> None:
    external = "wmEXT" + uuid.uuid4().hex[:12]
    message = contact_event("add_external_contact", userid="zhangsan", external=external)
    client = api_client(db)
    if problem == "signature":
        forged = MessageCrypt(token="otherToken", encoding_aes_key=corp.crypt_key(), receive_id=fake.corp_id)
        status, text = deliver(client, corp, message, crypt=forged)
        assert status == 401 and "msg_signature" in text
    elif problem == "corp":
        other = MessageCrypt(
            token=corp.crypt.token, encoding_aes_key=corp.crypt_key(), receive_id="wwothercorp"
        )
        status, text = deliver(client, corp, message, crypt=other)
        assert status == 401 and "receiveid" in text
    elif problem == "stale":
        status, text = deliver(client, corp, message, timestamp=int(time.time()) - 3600)
        assert status == 401 and "stale" in text
    else:
        response = client.post("/wecom/callback/nosuchkey", params={"msg_signature": "x"}, content="<xml/>")
        assert response.status_code == 404
    assert _events(db, corp.workspace_id, "wecom.friend_added") == []


def test_malicious_xml_is_refused(db: Database, corp: Corp) -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
    response = api_client(db).post(corp.callback_path, params={"msg_signature": "x"}, content=bomb)
    assert response.status_code == 422 and "not valid XML" in response.json()["message"]


def test_an_add_through_a_live_code_is_credited_to_the_code_and_staff(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    """The add_external_contact callback's state names a live code: the new customer is the code's
    (first channel, owner = the staff member added), counted as new once; the deletion counts too."""
    with db.transaction() as session:
        wecom.map_staff(session, actor=corp.owner.actor, wecom_userid="wangwu", user_id=corp.owner.user_id)
        code = livecodes.create_live_code(
            session,
            actor=corp.owner.actor,
            spec=LiveCodeIn(
                name="门店桌贴", placement="store_table", staff=[StaffIn(user_id=corp.owner.user_id)]
            ),
        )
        state, channel_id = code.state, code.channel_id
    external = "wmEXT" + uuid.uuid4().hex[:12]
    fake.add_friend("wangwu", external, name="赵六")
    client = api_client(db)
    add = contact_event("add_external_contact", userid="wangwu", external=external, State=state)
    assert deliver(client, corp, add) == (200, "success")
    [event] = _events(db, corp.workspace_id, "wecom.friend_added")
    with db.reader() as session:
        [credited] = session.scalars(select(LiveCodeAdd).where(LiveCodeAdd.external_userid == external)).all()
        customer = session.get(Customer, event.customer_id)
    assert credited.customer_id == event.customer_id and credited.is_new_customer
    assert credited.staff_user_id == corp.owner.user_id and credited.staff_wecom_userid == "wangwu"
    assert customer is not None and customer.first_channel_id == channel_id
    assert customer.owner_user_id == corp.owner.user_id
    # a state that is no live code's (a contact way made elsewhere) credits nothing and is still recorded
    other = "wmEXT" + uuid.uuid4().hex[:12]
    fake.add_friend("wangwu", other)
    message = contact_event("add_external_contact", userid="wangwu", external=other, State="poster-2026")
    assert deliver(client, corp, message) == (200, "success")
    assert deliver(client, corp, contact_event("del_follow_user", userid="wangwu", external=external)) == (
        200,
        "success",
    )
    with db.reader() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(LiveCodeAdd).where(LiveCodeAdd.external_userid == other)
            )
            == 0
        )
        deleted = session.scalar(
            select(LiveCodeAdd.deleted_at).where(LiveCodeAdd.external_userid == external)
        )
    assert deleted is not None
