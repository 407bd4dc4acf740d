"""A member writing to one customer (1:1): the channels and why one cannot reach the customer, the
preview, and the send through the gateway — the owner, staff to their own customer, staff refused for
another's, a cap the gateway suppresses with its reason, and one message for a repeated key."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.core.db import Database
from siyu.core.errors import NotFound, PermissionDenied, ValidationFailed
from siyu.customers import service as customers
from siyu.reach import service
from tests.factories import api_client, make_customer, make_member, unique


def _customer(
    session: Session,
    *,
    workspace_id: int,
    owner_user_id: int | None = None,
    wecom: bool = True,
    grants=("sms",),
) -> int:
    """A customer with a phone and an email (and a WeCom external userid), consent to marketing on `grants`."""
    identities = {"email": f"{unique('e')}@example.com"}
    if wecom:
        identities["wecom_external_userid"] = unique("wm")
    customer = make_customer(
        session, workspace_id=workspace_id, name="王小明", identities=identities, owner_user_id=owner_user_id
    )
    for channel in grants:
        customers.record_system_consent(
            session, workspace_id=workspace_id, customer_id=customer.id, contact_channel=channel,
            purpose="marketing", status="granted", source="test",
        )  # fmt: skip
    return customer.id


def _quiet_hours_off(session: Session, owner: Actor, **changes: object) -> None:
    # pages and the API decide at the wall clock: without quiet hours a marketing message is never deferred
    service.update_policy(session, actor=owner, changes={"quiet_start": None, "quiet_end": None, **changes})


def _options(session: Session, actor: Actor, customer_id: int, purpose: str) -> dict[str, str | None]:
    found = service.channel_options(session, actor=actor, customer_id=customer_id, purpose=purpose)
    return {o.channel: (o.reason.value if o.reason else None) for o in found}


def test_channels_show_why_one_cannot_reach_the_customer(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        customer = _customer(session, workspace_id=workspace_id, wecom=False, grants=("sms",))
        assert _options(session, owner, customer, "marketing") == {
            "wecom": "not_wecom_friend",
            "sms": None,
            "email": "no_consent",
        }
        # a service message needs no marketing consent
        assert _options(session, owner, customer, "transactional") == {
            "wecom": "not_wecom_friend",
            "sms": None,
            "email": None,
        }
        service.set_do_not_contact(session, actor=owner, customer_id=customer, do_not_contact=True)
        assert set(_options(session, owner, customer, "transactional").values()) == {"do_not_contact"}
        with pytest.raises(ValidationFailed, match="purpose"):
            service.channel_options(session, actor=owner, customer_id=customer, purpose="spam")


def test_owner_previews_and_sends_and_the_message_is_the_customers(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        customer = _customer(session, workspace_id=workspace_id)
        preview = service.preview_message(
            session, actor=owner, customer_id=customer, channel="sms", text="{{ name }}，您的订单已发货"
        )
        assert preview.content == {"text": "王小明，您的订单已发货"} and not preview.problems
        sent = service.send_one(
            session, actor=owner, customer_id=customer, channel="sms", purpose="transactional",
            text="{{ name }}，您的订单已发货", idempotency_key=service.form_key(actor=owner, form_token="token-0001"),
        )  # fmt: skip
    assert not sent.repeated
    message = sent.message
    assert (message.status, message.source, message.channel) == ("queued", "staff", "sms")
    assert message.content == {"text": "王小明，您的订单已发货"}  # rendered for the customer
    assert message.source_ref == f"member:{owner.user_id}"
    with db.reader() as session:
        [listed] = service.list_messages(session, actor=owner, customer_id=customer)
    assert listed.id == message.id


def test_staff_writes_to_their_own_customer_only(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        staff = make_member(session, workspace_id=workspace_id, role=Role.STAFF).actor
        other = make_member(session, workspace_id=workspace_id, role=Role.STAFF).actor
        analyst = make_member(session, workspace_id=workspace_id, role=Role.ANALYST).actor
        mine = _customer(session, workspace_id=workspace_id, owner_user_id=staff.user_id)
        theirs = _customer(session, workspace_id=workspace_id, owner_user_id=other.user_id)
    with db.transaction() as session:
        sent = service.send_one(
            session, actor=staff, customer_id=mine, channel="wecom", purpose="transactional", text="在的，马上为您查",
            idempotency_key=service.form_key(actor=staff, form_token="token-0002"),
        )  # fmt: skip
        assert sent.message.status == "queued" and sent.message.channel == "wecom"
        assert _options(session, staff, mine, "transactional")["sms"] is None
        # the address shown to staff is masked like every phone they see
        [sms] = [o for o in service.channel_options(session, actor=staff, customer_id=mine, purpose="transactional") if o.channel == "sms"]  # fmt: skip
        assert sms.address is not None and "****" in sms.address
    with db.transaction() as session:
        with pytest.raises(PermissionDenied, match="not assigned to you"):
            service.send_one(
                session, actor=staff, customer_id=theirs, channel="sms", purpose="transactional", text="你好",
                idempotency_key=service.form_key(actor=staff, form_token="token-0003"),
            )  # fmt: skip
        with pytest.raises(PermissionDenied, match="not assigned to you"):
            service.channel_options(session, actor=staff, customer_id=theirs, purpose="transactional")
        with pytest.raises(PermissionDenied, match="analyst"):
            service.ensure_may_write(session, actor=analyst, customer_id=mine)
        with pytest.raises(NotFound):
            service.ensure_may_write(session, actor=staff, customer_id=10**12)
    with db.reader() as session:
        owner_view = service.list_messages(session, actor=other, customer_id=theirs)
    assert owner_view == []  # nothing was written for the refused send


def test_a_cap_suppresses_the_message_and_says_why(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        _quiet_hours_off(session, owner, channel_caps={"sms": {"count": 1, "days": 7}})
        customer = _customer(session, workspace_id=workspace_id)
        service.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=unique("b"),
            customer_ids=[customer], content={"sms": {"text": "春季上新"}}, purpose="marketing",
            channel_preference=["sms"],
        )  # fmt: skip
        sent = service.send_one(
            session, actor=owner, customer_id=customer, channel="sms", purpose="marketing",
            text="专属您的优惠", idempotency_key=service.form_key(actor=owner, form_token="token-0004"),
        )  # fmt: skip
    assert (sent.message.status, sent.message.reason) == ("suppressed", "channel_cap")
    assert sent.message.explanation == [{"channel": "sms", "reason": "channel_cap"}]


def test_the_same_key_sends_once(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        customer = _customer(session, workspace_id=workspace_id)
    key = service.form_key(actor=owner, form_token="token-0005")
    results = []
    for _ in range(2):
        with db.transaction() as session:
            sent = service.send_one(
                session, actor=owner, customer_id=customer, channel="email", purpose="transactional",
                text="发票已开具", subject="发票", idempotency_key=key,
            )  # fmt: skip
            results.append(sent)
    assert [r.repeated for r in results] == [False, True]
    assert results[0].message.id == results[1].message.id
    with db.reader() as session:
        assert len(service.list_messages(session, actor=owner, customer_id=customer)) == 1
    with pytest.raises(ValidationFailed, match="idempotency token"):
        service.form_key(actor=owner, form_token="x")


def test_bad_input_is_refused_before_anything_is_written(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        customer = _customer(session, workspace_id=workspace_id)
        key = service.form_key(actor=owner, form_token="token-0006")
        for kwargs, where in (
            ({"channel": "fax", "text": "x"}, "channel"),
            ({"channel": "sms", "text": "  "}, "text"),
            ({"channel": "email", "text": "x"}, "subject"),
            ({"channel": "sms", "text": "{{ name"}, "content.sms.text"),
        ):
            with pytest.raises(ValidationFailed) as refused:
                service.send_one(
                    session, actor=owner, customer_id=customer, purpose="transactional", idempotency_key=key,
                    **kwargs,  # type: ignore[arg-type]
                )  # fmt: skip
            assert (refused.value.where or "").startswith(where)
        assert service.list_messages(session, actor=owner, customer_id=customer) == []


def test_the_api_writes_to_one_customer(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        staff = make_member(session, workspace_id=workspace_id, role=Role.STAFF)
        other = make_member(session, workspace_id=workspace_id, role=Role.STAFF)
        mine = _customer(session, workspace_id=workspace_id, owner_user_id=staff.user_id, wecom=False)
        theirs = _customer(session, workspace_id=workspace_id, owner_user_id=other.user_id)
    client = api_client(db)
    channels = client.get(f"/api/reach/customers/{mine}/channels", headers=staff.headers)
    assert channels.status_code == 200, channels.text
    assert {c["channel"]: c["reason"] for c in channels.json()}["wecom"] == "not_wecom_friend"
    body = {"channel": "sms", "text": "您好，已为您预约", "idempotency_key": "api-key-0001"}
    first = client.post(f"/api/reach/customers/{mine}/messages", json=body, headers=staff.headers)
    assert first.status_code == 201, first.text
    again = client.post(f"/api/reach/customers/{mine}/messages", json=body, headers=staff.headers).json()
    assert again["repeated"] is True and again["message"]["id"] == first.json()["message"]["id"]
    refused = client.post(f"/api/reach/customers/{theirs}/messages", json=body, headers=staff.headers)
    assert refused.status_code == 403 and "not assigned to you" in refused.json()["message"]
