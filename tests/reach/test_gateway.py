"""The gateway's decisions on both engines: consent, do-not-contact, budget and caps across sources,
the WeCom platform cap, quiet hours in the customer's zone, de-duplication, idempotency, accounting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from siyu.core.db import Database
from siyu.core.errors import NotFound, ValidationFailed
from siyu.customers import service as customers
from siyu.reach import service
from siyu.reach.models import ReachMessage
from tests.factories import make_customer, member
from tests.reach.conftest import CONTENT, NOON, content, reachable


def _send(db: Database, workspace_id: int, ids: list[int], **kwargs):  # type: ignore[no-untyped-def]
    values = {
        "source": "broadcast",
        "source_ref": "b1",
        "content": CONTENT,
        "purpose": "marketing",
        "channel_preference": ["sms"],
        "now": NOON,
    }
    values.update(kwargs)
    with db.transaction() as session:
        return service.send(session, workspace_id=workspace_id, customer_ids=ids, **values)


def _messages(db: Database, workspace_id: int, source_ref: str | None = None) -> list[ReachMessage]:
    with db.reader() as session:
        query = select(ReachMessage).where(ReachMessage.workspace_id == workspace_id)
        if source_ref:
            query = query.where(ReachMessage.source_ref == source_ref)
        return list(session.scalars(query.order_by(ReachMessage.customer_id)))


def test_consent_decides_and_the_preference_falls_back(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        granted = reachable(session, workspace_id=workspace_id)
        none = reachable(session, workspace_id=workspace_id, grants=())
        not_friend = reachable(session, workspace_id=workspace_id, wecom=False)
        withdrawn = reachable(session, workspace_id=workspace_id)
        customers.record_system_consent(
            session, workspace_id=workspace_id, customer_id=withdrawn, contact_channel="wecom",
            purpose="marketing", status="withdrawn", source="test",
        )  # fmt: skip
    summary = _send(
        db, workspace_id, [granted, none, not_friend, withdrawn], channel_preference=["wecom", "sms"]
    )
    assert summary.audience == summary.created == 4
    by_customer = {m.customer_id: m for m in _messages(db, workspace_id)}
    assert (by_customer[granted].status, by_customer[granted].channel) == ("queued", "wecom")
    assert by_customer[none].status == "suppressed" and by_customer[none].reason == "no_consent"
    assert [e["reason"] for e in by_customer[none].explanation] == ["no_consent", "no_consent"]
    assert (by_customer[not_friend].channel, by_customer[not_friend].status) == ("sms", "queued")
    assert by_customer[not_friend].explanation[0] == {"channel": "wecom", "reason": "not_wecom_friend"}
    assert by_customer[withdrawn].channel == "sms"
    assert by_customer[withdrawn].explanation[0]["reason"] == "consent_withdrawn"
    assert by_customer[granted].content == CONTENT["wecom"]
    assert by_customer[not_friend].address and by_customer[not_friend].address.startswith("+86")


def test_transactional_needs_no_grant_but_respects_a_withdrawal(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        silent = reachable(session, workspace_id=workspace_id, grants=())
        out = reachable(session, workspace_id=workspace_id, grants=())
        customers.record_system_consent(
            session, workspace_id=workspace_id, customer_id=out, contact_channel="sms",
            purpose="transactional", status="withdrawn", source="test",
        )  # fmt: skip
    _send(db, workspace_id, [silent, out], purpose="transactional", source_ref="order-1")
    by_customer = {m.customer_id: m for m in _messages(db, workspace_id)}
    assert by_customer[silent].status == "queued"
    assert by_customer[out].reason == "consent_withdrawn"


def test_budget_holds_across_sources_and_channels(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    _send(db, workspace_id, [customer], source="broadcast", source_ref="b1", content=content("1"))
    _send(db, workspace_id, [customer], source="journey", source_ref="j1", step="s1", content=content("2"),
          channel_preference=["email"], now=NOON + timedelta(days=2))  # fmt: skip
    third = _send(db, workspace_id, [customer], source="api", source_ref="a1", content=content("3"),
                  channel_preference=["wecom"], now=NOON + timedelta(days=5))  # fmt: skip
    assert third.by_reason == {"budget_exceeded": 1}
    later = _send(db, workspace_id, [customer], source="api", source_ref="a2", content=content("4"),
                  now=NOON + timedelta(days=7, hours=1))  # fmt: skip
    assert later.by_status == {"queued": 1}  # the first left the 7-day window
    receipt = _send(db, workspace_id, [customer], purpose="transactional", source_ref="o1", content=content("5"),
                    now=NOON + timedelta(days=7, hours=2))  # fmt: skip
    assert receipt.by_status == {"queued": 1}  # transactional messages spend no budget


def test_channel_cap_and_policy_validation(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        with pytest.raises(ValidationFailed, match="wecom_cap"):
            service.update_policy(session, actor=owner.actor, changes={"wecom_cap": "year"})
        with pytest.raises(ValidationFailed, match="quiet_start"):
            service.update_policy(session, actor=owner.actor, changes={"quiet_start": "25:00"})
        service.update_policy(
            session, actor=owner.actor,
            changes={"marketing_budget": 10, "channel_caps": {"sms": {"count": 1, "days": 30}}},
        )  # fmt: skip
        customer = reachable(session, workspace_id=workspace_id)
    _send(db, workspace_id, [customer], source_ref="b1", content=content("1"))
    second = _send(db, workspace_id, [customer], source_ref="b2", content=content("2"), channel_preference=["sms", "email"],
                   now=NOON + timedelta(days=3))  # fmt: skip
    [message] = _messages(db, workspace_id, "b2")
    assert second.by_status == {"queued": 1} and message.channel == "email"
    assert message.explanation[0] == {"channel": "sms", "reason": "channel_cap"}


@pytest.mark.parametrize(("mode", "allowed"), [("day", 1), ("week", 7)])
def test_wecom_platform_cap(db: Database, workspace_id: int, mode: str, allowed: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        service.update_policy(
            session, actor=owner.actor, changes={"marketing_budget": 100, "wecom_cap": mode}
        )
        customer = reachable(session, workspace_id=workspace_id)
    statuses = []
    for n in range(allowed + 1):
        summary = _send(db, workspace_id, [customer], source_ref=f"b{n}", content=content(str(n)),
                        channel_preference=["wecom"], now=NOON + timedelta(minutes=n))  # fmt: skip
        statuses.append(summary.by_reason.get("platform_cap", 0))
    assert statuses == [0] * allowed + [1]
    staff = _send(db, workspace_id, [customer], source="staff", source_ref="chat", content=content("s"),
                  channel_preference=["wecom"], now=NOON + timedelta(minutes=30))  # fmt: skip
    assert staff.by_status == {"queued": 1}  # a member's 1:1 message is no enterprise mass message


def test_wecom_month_cap_is_the_days_of_the_month() -> None:
    from zoneinfo import ZoneInfo

    from siyu.reach.service.policy import calendar_period

    zone = ZoneInfo("Asia/Shanghai")
    assert calendar_period(NOON.replace(month=2), zone, "month")[2] == 28
    assert calendar_period(NOON, zone, "month")[2] == 30
    # 2026-06-30 23:30 in Shanghai is still June, although it is the 30th at 15:30 UTC
    late = NOON.replace(day=30, hour=15, minute=30)
    assert calendar_period(late, zone, "month")[0].month == 6


def test_quiet_hours_defer_in_the_customers_zone(db: Database, workspace_id: int) -> None:
    night = NOON.replace(hour=14)  # 22:00 in Shanghai, 15:00 in London
    with db.transaction() as session:
        local = reachable(session, workspace_id=workspace_id)
        london = reachable(session, workspace_id=workspace_id, attributes={"timezone": "Europe/London"})
    summary = _send(db, workspace_id, [local, london], now=night)
    assert summary.by_status == {"deferred": 1, "queued": 1}
    by_customer = {m.customer_id: m for m in _messages(db, workspace_id)}
    assert by_customer[local].status == "deferred"
    assert by_customer[local].due_at == NOON.replace(day=2, hour=1)  # 09:00 next morning in Shanghai
    assert by_customer[london].status == "queued" and by_customer[london].due_at == night
    transactional = _send(db, workspace_id, [local], purpose="transactional", source_ref="o", content=content("o"),
                          now=night)  # fmt: skip
    assert transactional.by_status == {"queued": 1}


def test_quiet_hours_math() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    assert service.quiet_until(NOON, zone, "21:00", "09:00") is None
    assert service.quiet_until(NOON.replace(hour=23), zone, "21:00", "09:00") == NOON.replace(day=2, hour=1)
    assert service.quiet_until(NOON.replace(hour=0), zone, "21:00", "09:00") == NOON.replace(
        hour=1
    )  # 08:00 local
    assert service.quiet_until(NOON, zone, "12:00", "14:00") == NOON.replace(hour=6)
    assert service.quiet_until(NOON, zone, None, None) is None


def test_duplicate_content_within_the_window(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    _send(
        db,
        workspace_id,
        [customer],
        source="broadcast",
        source_ref="b1",
        content=content("same"),
        purpose="transactional",
    )
    again = _send(db, workspace_id, [customer], source="journey", source_ref="j1", content=content("same"),
                  purpose="transactional", now=NOON + timedelta(hours=5))  # fmt: skip
    assert again.by_reason == {"duplicate": 1}
    next_day = _send(db, workspace_id, [customer], source="journey", source_ref="j2", content=content("same"),
                     purpose="transactional", now=NOON + timedelta(hours=25))  # fmt: skip
    assert next_day.by_status == {"queued": 1}


def test_idempotent_repeat_decides_nothing_twice(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(3)]
    first = _send(db, workspace_id, ids[:2])
    again = _send(db, workspace_id, ids, now=NOON + timedelta(minutes=1))
    assert (first.created, again.created, again.existing) == (2, 1, 2)
    assert len(_messages(db, workspace_id)) == 3
    keys = {m.idempotency_key for m in _messages(db, workspace_id)}
    assert keys == {f"broadcast:b1:{c}" for c in ids}


def test_accounting_adds_up_to_the_audience(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(4)]
        ids.append(reachable(session, workspace_id=workspace_id, grants=()))
        ids.append(make_customer(session, workspace_id=workspace_id, phone="").id)
        service.set_do_not_contact(session, actor=owner.actor, customer_id=ids[0], do_not_contact=True)
    summary = _send(db, workspace_id, ids + ids[:2], source_ref="big")
    with db.reader() as session:
        accounting = service.accounting(
            session, workspace_id=workspace_id, source="broadcast", source_ref="big"
        )
    assert summary.audience == accounting.total == 6
    assert accounting.by_status == {"queued": 3, "suppressed": 3}
    assert accounting.by_reason == {"do_not_contact": 1, "no_consent": 1, "no_address": 1}


def test_unknown_customers_are_refused_and_nothing_is_written(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        mine = reachable(session, workspace_id=workspace_id)
    with pytest.raises(NotFound, match="customer id"):
        _send(db, workspace_id, [mine, 10**12])
    with pytest.raises(ValidationFailed, match="no content"):
        _send(db, workspace_id, [mine], content={"email": {"subject": "s", "text": "t"}})
    with pytest.raises(ValidationFailed, match="subject"):
        _send(db, workspace_id, [mine], content={"email": {"text": "t"}}, channel_preference=["email"])
    assert _messages(db, workspace_id) == []


def test_sms_reply_t_withdraws_sms_marketing(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
        phone = customers.contact_facts(session, workspace_id=workspace_id, customer_ids=[customer])[
            customer
        ].first("phone")
        assert phone
        assert service.handle_sms_reply(session, workspace_id=workspace_id, phone=phone, text="hello") is None
        assert (
            service.handle_sms_reply(session, workspace_id=workspace_id, phone=phone[3:], text=" td ")
            == customer
        )
    summary = _send(db, workspace_id, [customer])
    assert summary.by_reason == {"consent_withdrawn": 1}
    for text in ("T", "退订", "td"):
        assert service.is_unsubscribe_reply(text)


def test_one_click_unsubscribe_withdraws_email_marketing(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
        token = service.unsubscribe_token(workspace_id=workspace_id, customer_id=customer)
        service.unsubscribe(session, token=token)
        service.unsubscribe(session, token=token)  # a second click changes nothing
        with pytest.raises(NotFound):
            service.unsubscribe(session, token=token[:-2] + "xx")
    summary = _send(db, workspace_id, [customer], channel_preference=["email"])
    assert summary.by_reason == {"consent_withdrawn": 1}


def test_scheduled_send_is_a_timer_row(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    later = NOON + timedelta(days=3)
    _send(db, workspace_id, [customer], send_at=later)
    [message] = _messages(db, workspace_id)
    assert (message.status, message.due_at, message.planned_at) == ("queued", later, later)
    with db.transaction() as session:
        assert (
            service.claim(session, limit=10, now=later - timedelta(seconds=1), workspace_id=workspace_id)
            == []
        )
        assert len(service.claim(session, limit=10, now=later, workspace_id=workspace_id)) == 1


def test_rows_per_send_are_one_per_customer(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(3)]
    _send(db, workspace_id, ids * 3)
    with db.reader() as session:
        assert session.scalar(select(func.count()).where(ReachMessage.workspace_id == workspace_id)) == 3


def _welcome(db: Database, workspace_id: int, ids: list[int], add: int):  # type: ignore[no-untyped-def]
    return _send(
        db, workspace_id, ids, source="live_code", source_ref="7", step="welcome",
        idempotency_key=f"live_code_add:{add}", purpose="transactional",
        channel_preference=[service.WELCOME_CHANNEL],
        content={service.WELCOME_CHANNEL: {"text": "欢迎光临", "sender": "wangwu"}},
    )  # fmt: skip


def test_welcome_messages_are_transactional_replies_with_their_own_checks(
    db: Database, workspace_id: int
) -> None:
    with db.transaction() as session:
        silent = reachable(session, workspace_id=workspace_id, grants=())  # no marketing consent at all
        out = reachable(session, workspace_id=workspace_id, grants=())
        customers.record_system_consent(
            session, workspace_id=workspace_id, customer_id=out, contact_channel="wecom",
            purpose="transactional", status="withdrawn", source="test",
        )  # fmt: skip
    first = _welcome(db, workspace_id, [silent, out], add=1)
    assert first.by_status == {"queued": 1, "suppressed": 1} and first.by_reason == {"consent_withdrawn": 1}
    # a second add with the same text (another staff member) is another welcome: no duplicate by content
    assert _welcome(db, workspace_id, [silent], add=2).by_status == {"queued": 1}
    assert _welcome(db, workspace_id, [silent], add=2).existing == 1  # the same add: enqueued once
    # the channel carries live codes' transactional welcomes only
    for wrong in ({"source": "broadcast"}, {"purpose": "marketing"}):
        with pytest.raises(ValidationFailed, match="welcome"):
            _send(
                db, workspace_id, [silent], **{"source": "live_code", "purpose": "transactional", **wrong},
                channel_preference=[service.WELCOME_CHANNEL], source_ref="x",
                content={service.WELCOME_CHANNEL: {"text": "欢迎", "sender": "wangwu"}},
            )  # fmt: skip
    with pytest.raises(ValidationFailed, match="sender"):
        _send(
            db, workspace_id, [silent], source="live_code", purpose="transactional", source_ref="y",
            channel_preference=[service.WELCOME_CHANNEL], content={service.WELCOME_CHANNEL: {"text": "欢迎"}},
        )  # fmt: skip
