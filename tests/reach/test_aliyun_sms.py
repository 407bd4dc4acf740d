"""SMS through Aliyun: the RPC signature against Aliyun's published example, the adapter against a local
Dysmsapi that checks the signature, errors mapped, and the pushed delivery reports and replies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from siyu.core.config import Settings
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import ValidationFailed
from siyu.reach import service
from siyu.reach.adapters.aliyun_sms import (
    AliyunSmsAdapter,
    AliyunSmsConfig,
    percent_encode,
    signature,
    string_to_sign,
)
from siyu.reach.adapters.base import OutboundMessage, Outcome
from siyu.reach.adapters.registry import Adapters, build_adapters
from siyu.reach.models import ReachMessage
from siyu.reach.tasks import Worker
from siyu.workspaces import service as workspaces
from tests.factories import api_client
from tests.reach.conftest import CONTENT, NOON, reachable
from tests.reach.fake_aliyun_sms import FakeAliyunSms, running

# The example of Aliyun's SMS documentation ("HTTP 协议及签名"): every parameter of one SendSms call,
# the AccessKey secret "testSecret", the string to sign and the signature it publishes.
PUBLISHED_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
PUBLISHED_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D"
    "15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591"
    "%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26"
    "SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26"
    "SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522"
    "%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)
PUBLISHED_SIGNATURE = "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_signature_is_aliyuns_published_example() -> None:
    assert string_to_sign(PUBLISHED_PARAMS) == PUBLISHED_STRING_TO_SIGN
    assert signature(PUBLISHED_PARAMS, secret="testSecret") == PUBLISHED_SIGNATURE
    # the Signature parameter itself is never part of what is signed
    assert signature({**PUBLISHED_PARAMS, "Signature": "x"}, secret="testSecret") == PUBLISHED_SIGNATURE
    assert signature(PUBLISHED_PARAMS, secret="testsecret") != PUBLISHED_SIGNATURE


def test_percent_encoding_follows_rfc_3986_as_aliyun_asks() -> None:
    assert percent_encode("a b*c~d-e_f.g") == "a%20b%2Ac~d-e_f.g"
    assert percent_encode("+/=&") == "%2B%2F%3D%26"
    assert percent_encode("退订") == "%E9%80%80%E8%AE%A2"


@pytest.fixture
def fake() -> Iterator[FakeAliyunSms]:
    with running() as server:
        yield server


def _adapter(fake: FakeAliyunSms, **overrides: Any) -> AliyunSmsAdapter:
    values: dict[str, Any] = {
        "access_key_id": fake.access_key_id,
        "access_key_secret": fake.access_key_secret,
        "sign_name": "私域测试",
        "template_code": "SMS_100000001",
        "endpoint": fake.url,
    }
    values.update(overrides)
    return AliyunSmsAdapter(AliyunSmsConfig(**values))


def _message(**kwargs: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 9, "workspace_id": 1, "customer_id": 42, "channel": "sms", "address": "+8613900000001",
        "purpose": "marketing", "content": {"text": "春茶上新 回T退订"}, "idempotency_key": "broadcast:b1:42",
    }  # fmt: skip
    values.update(kwargs)
    return OutboundMessage(**values)


def test_send_sms_is_signed_and_carries_template_and_idempotency_key(fake: FakeAliyunSms) -> None:
    result = _adapter(fake).send(_message())
    assert result.outcome is Outcome.SENT
    [call] = fake.accepted
    assert result.provider_message_id == call["BizId"]
    assert (call["PhoneNumbers"], call["SignName"], call["TemplateCode"]) == (
        "+8613900000001",
        "私域测试",
        "SMS_100000001",
    )
    assert json.loads(call["TemplateParam"]) == {"content": "春茶上新 回T退订"}
    assert call["OutId"] == "broadcast:b1:42"
    # a message's own template and variables win over the defaults
    own = _adapter(fake).send(
        _message(content={"text": "x", "template_code": "SMS_2", "template_params": {"name": "李"}})
    )
    assert own.outcome is Outcome.SENT
    assert (fake.accepted[-1]["TemplateCode"], json.loads(fake.accepted[-1]["TemplateParam"])) == (
        "SMS_2",
        {"name": "李"},
    )


def test_a_wrong_secret_is_refused_by_the_signature_check(fake: FakeAliyunSms) -> None:
    result = _adapter(fake, access_key_secret="not-the-secret").send(_message())
    assert result.outcome is Outcome.RETRY and "SignatureDoesNotMatch" in (result.error or "")
    assert fake.accepted == []


@pytest.mark.parametrize(
    ("code", "outcome", "rejected"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", Outcome.RETRY, False),
        ("Throttling.User", Outcome.RETRY, False),
        ("isp.SYSTEM_ERROR", Outcome.RETRY, False),
        ("ServiceUnavailable", Outcome.RETRY, False),
        ("isv.MOBILE_NUMBER_ILLEGAL", Outcome.FAILED, True),
        ("isv.SMS_TEMPLATE_ILLEGAL", Outcome.FAILED, False),
        ("isv.TEMPLATE_MISSING_PARAMETERS", Outcome.FAILED, False),
    ],
)
def test_aliyun_codes_are_mapped(fake: FakeAliyunSms, code: str, outcome: Outcome, rejected: bool) -> None:
    fake.refusals["+8613900000001"] = [code]
    result = _adapter(fake).send(_message())
    assert (result.outcome, result.address_rejected) == (outcome, rejected)
    assert code in (result.error or "")


def test_without_a_template_nothing_is_sent(fake: FakeAliyunSms) -> None:
    result = _adapter(fake, template_code=None).send(_message())
    assert result.outcome is Outcome.FAILED and "template" in (result.error or "")
    assert fake.calls == 0


def test_network_errors_retry() -> None:
    adapter = AliyunSmsAdapter(
        AliyunSmsConfig(
            access_key_id="a",
            access_key_secret="b",
            sign_name="s",
            template_code="T",
            endpoint="http://127.0.0.1:9",
        )
    )
    assert adapter.send(_message()).outcome is Outcome.RETRY


# --- end to end: worker, delivery reports and replies pushed to the workspace's URL ----------------------


def _sms_broadcast(db: Database, workspace_id: int, count: int, ref: str = "b") -> list[int]:
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(count)]
        service.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=ids,
            content=CONTENT, purpose="marketing", channel_preference=["sms"], now=NOON,
        )  # fmt: skip
    return ids


def _messages(db: Database, workspace_id: int) -> list[ReachMessage]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(ReachMessage)
                .where(ReachMessage.workspace_id == workspace_id)
                .order_by(ReachMessage.id)
            )
        )


def _paths(workspace_id: int) -> dict[str, str]:
    urls = service.push_urls(workspace_id=workspace_id)
    return {k: "/api" + v.split("/api", 1)[1] for k, v in urls.items()}


def test_reports_pushed_by_aliyun_mark_messages_delivered_or_failed(
    db: Database, workspace_id: int, fake: FakeAliyunSms
) -> None:
    _sms_broadcast(db, workspace_id, 3)
    Worker(db, Adapters({"sms": _adapter(fake)}), workspace_id=workspace_id).drain()
    first, second, third = _messages(db, workspace_id)
    assert {m.status for m in (first, second, third)} == {"sent"}
    assert [m.provider_message_id for m in (first, second, third)] == [c["BizId"] for c in fake.accepted]
    assert [c["OutId"] for c in fake.accepted] == [m.idempotency_key for m in (first, second, third)]
    report = [
        {"phone_number": first.address, "send_time": "2026-06-01 12:00:00", "report_time": "2026-06-01 12:00:05",
         "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
         "biz_id": first.provider_message_id, "out_id": first.idempotency_key},
        {"phone_number": second.address, "send_time": "2026-06-01 12:00:00", "report_time": "2026-06-01 12:00:05",
         "success": False, "err_code": "MK:0001", "err_msg": "空号", "sms_size": "1",
         "biz_id": second.provider_message_id, "out_id": second.idempotency_key},
        {"phone_number": "13800000000", "success": True, "biz_id": "999^0", "out_id": "not-ours"},
    ]  # fmt: skip
    client = api_client(db)
    path = _paths(workspace_id)["aliyun_sms_report"]
    for _ in range(2):  # Aliyun pushes again when it got no 200: the repeat changes nothing
        answer = client.post(path, json=report)
        assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "接收成功"}
    first, second, third = _messages(db, workspace_id)
    assert (first.status, second.status, third.status) == ("delivered", "failed", "sent")
    assert second.last_error == "failed: MK:0001 空号"
    with db.reader() as session:
        kinds = list(
            session.scalars(
                select(DomainEvent.type).where(
                    DomainEvent.workspace_id == workspace_id, DomainEvent.type.in_(["message.delivered"])
                )
            )
        )
    assert kinds == ["message.delivered"]


def test_push_urls_are_per_workspace_and_refuse_a_forged_token(
    db: Database, workspace_id: int, fake: FakeAliyunSms
) -> None:
    with db.transaction() as session:
        other = workspaces.create_workspace(session, slug=f"other-{uuid.uuid4().hex[:8]}", name="Other").id
    _sms_broadcast(db, workspace_id, 1)
    Worker(db, Adapters({"sms": _adapter(fake)}), workspace_id=workspace_id).drain()
    [message] = _messages(db, workspace_id)
    report = [{"success": True, "biz_id": message.provider_message_id, "out_id": message.idempotency_key}]
    client = api_client(db)
    path = _paths(workspace_id)["aliyun_sms_report"]
    # another workspace's URL does not settle this workspace's message
    assert client.post(_paths(other)["aliyun_sms_report"], json=report).json()["code"] == 0
    assert _messages(db, workspace_id)[0].status == "sent"
    forged = path.replace("/push/", "/push/x")
    assert client.post(forged, json=report).status_code == 404
    assert _messages(db, workspace_id)[0].status == "sent"
    assert client.post(path, json=report).status_code == 200
    assert _messages(db, workspace_id)[0].status == "delivered"


def test_a_report_settles_a_message_whose_worker_died_after_aliyun_accepted_it(
    db: Database, workspace_id: int, fake: FakeAliyunSms
) -> None:
    _sms_broadcast(db, workspace_id, 1)
    with db.transaction() as session:
        [claimed] = service.claim(session, limit=1, lease_seconds=600, workspace_id=workspace_id)
    adapter = _adapter(fake)
    result = adapter.send(claimed.message)  # accepted; the worker dies before recording it
    assert result.outcome is Outcome.SENT
    report = [
        {"success": True, "biz_id": result.provider_message_id, "out_id": claimed.message.idempotency_key}
    ]
    assert api_client(db).post(_paths(workspace_id)["aliyun_sms_report"], json=report).status_code == 200
    [message] = _messages(db, workspace_id)
    assert (message.status, message.provider_message_id) == ("delivered", result.provider_message_id)
    with db.transaction() as session:
        late = service.complete(
            session, message_id=claimed.message.message_id, lease_token=claimed.lease_token, result=result
        )
    assert late == "lost"
    assert Worker(db, Adapters({"sms": adapter}), workspace_id=workspace_id).drain() == 0  # never sent again
    assert len(fake.accepted) == 1
    with db.reader() as session:
        events = list(
            session.scalars(
                select(DomainEvent.type)
                .where(DomainEvent.workspace_id == workspace_id, DomainEvent.type.like("message.%"))
                .order_by(DomainEvent.id)
            )
        )
    assert events == ["message.sent", "message.delivered"]


def test_an_unsubscribe_reply_pushed_by_aliyun_withdraws_sms_consent(
    db: Database, workspace_id: int, fake: FakeAliyunSms
) -> None:
    [customer_id] = _sms_broadcast(db, workspace_id, 1)
    [message] = _messages(db, workspace_id)
    national = (message.address or "").removeprefix("+86")
    replies = [
        {"phone_number": national, "send_time": "2026-06-01 12:01:00", "content": "好的", "sign_name": "私域测试",
         "dest_code": "1234", "sequence_id": 1},
        {"phone_number": national, "send_time": "2026-06-01 12:02:00", "content": " td ", "sign_name": "私域测试",
         "dest_code": "1234", "sequence_id": 2},
    ]  # fmt: skip
    client = api_client(db)
    assert client.post(_paths(workspace_id)["aliyun_sms_up"], json=replies).json()["code"] == 0
    with db.transaction() as session:
        summary = service.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref="after-reply",
            customer_ids=[customer_id], content={"sms": {"text": "再次上新"}}, purpose="marketing",
            channel_preference=["sms"], now=NOON,
        )  # fmt: skip
    assert summary.by_reason == {"consent_withdrawn": 1}


def test_settings_build_the_aliyun_adapter_or_say_what_is_missing(fake: FakeAliyunSms) -> None:
    with pytest.raises(ValidationFailed, match="SIYU_ALIYUN_SMS_SIGN_NAME"):
        build_adapters(
            Settings(
                reach_channels={"sms": "aliyun-sms"},
                aliyun_sms_access_key_id="a",
                aliyun_sms_access_key_secret="b",
            )
        )
    adapters = build_adapters(
        Settings(
            reach_channels={"sms": "aliyun-sms"},
            aliyun_sms_access_key_id=fake.access_key_id,
            aliyun_sms_access_key_secret=fake.access_key_secret,
            aliyun_sms_sign_name="私域测试",
            aliyun_sms_template_code="SMS_1",
            aliyun_sms_endpoint=fake.url,
        )
    )
    adapter = adapters.for_channel("sms")
    assert isinstance(adapter, AliyunSmsAdapter)
    assert adapter.send(_message()).outcome is Outcome.SENT
    with pytest.raises(ValidationFailed, match="database"):
        build_adapters(Settings(reach_channels={"wecom": "wecom"}))
