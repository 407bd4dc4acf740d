"""Personalised sends through the reach gateway: the outbox holds what each customer receives, a render
failure suppresses one message with its reason, tracked links are stored and counted once per click."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from siyu.auth.models import Role
from siyu.content import service as content
from siyu.content.models import ShortLink
from siyu.content.service.rendering import compile_content
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import ValidationFailed
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn
from siyu.customers.models import Customer
from siyu.membership import service as membership
from siyu.membership.models import EntryKind
from siyu.reach import service as reach
from siyu.reach.models import ReachMessage
from tests.factories import make_member, unique
from tests.reach.conftest import NOON, reachable

TEMPLATE = {
    "sms": {
        "text": '{{ name }}，{{ city | default("您") }}的专属券 {{ coupon_code | default("—") }}，积分 {{ points }}。'
        '{{ owner_name | default("") }} {{ link("https://shop.example.com/spring?utm=sms") }}'
    }
}


def _customer(
    session: Session,
    *,
    workspace_id: int,
    name: str | None,
    city: str | None = None,
    owner: int | None = None,
) -> int:
    """A customer reachable by SMS marketing, with the profile fields a template reads."""
    customer_id = reachable(session, workspace_id=workspace_id, grants=("sms",))
    row = session.get(Customer, customer_id)
    row.name, row.city, row.owner_user_id = name, city, owner
    session.flush()
    return customer_id


def test_personalised_send_stores_rendered_content_and_links(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        staff = make_member(session, workspace_id=workspace_id, role=Role.STAFF, name="小李")
        rich = _customer(session, workspace_id=workspace_id, name="王小明", city="上海", owner=staff.user_id)
        plain = _customer(session, workspace_id=workspace_id, name="赵六")
        owner = make_member(session, workspace_id=workspace_id)
        template = coupons.create_template(
            session, actor=owner.actor,
            body=TemplateIn(name=unique("券"), type="no_threshold", discount_cents=500, valid_days=30),
        )  # fmt: skip
        coupon = coupons.issue(
            session, workspace_id=workspace_id, template_id=template.id, customer_id=rich,
            source_kind="staff", source_ref="t", idempotency_key=unique("k"), at=NOON,
        )  # fmt: skip
        membership.apply(
            session, workspace_id=workspace_id, customer_id=rich, kind=EntryKind.EARN, points=120,
            source_kind="test", source_ref=unique("p"),
        )  # fmt: skip
        ref = unique("spring")
        summary = reach.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=[rich, plain],
            content=TEMPLATE, purpose="marketing", channel_preference=["sms"], personalise=True, now=NOON,
        )  # fmt: skip
    assert summary.by_status == {"queued": 2}
    with db.reader() as session:
        messages = {
            m.customer_id: m
            for m in session.scalars(select(ReachMessage).where(ReachMessage.source_ref == ref))
        }
        links = {
            link.customer_id: link
            for link in session.scalars(select(ShortLink).where(ShortLink.source_ref == ref))
        }
    assert len(links) == 2 and links[rich].token != links[plain].token
    base = content.short_link_base()
    assert messages[rich].content["text"] == (
        f"王小明，上海的专属券 {coupon.code}，积分 120。小李 {base}/s/{links[rich].token}"
    )
    assert messages[plain].content["text"] == f"赵六，您的专属券 —，积分 0。 {base}/s/{links[plain].token}"
    assert (
        links[rich].message_id == messages[rich].id
        and links[rich].url == "https://shop.example.com/spring?utm=sms"
    )


def test_render_failure_suppresses_that_message_only(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        named = _customer(session, workspace_id=workspace_id, name="孙七")
        nameless = _customer(session, workspace_id=workspace_id, name=None)
        ref = unique("strict")
        summary = reach.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=[named, nameless],
            content={"sms": {"text": "{{ name }}，您好 {{ link('https://shop.example.com/') }}"}},
            purpose="marketing", channel_preference=["sms"], personalise=True, now=NOON,
        )  # fmt: skip
    assert summary.by_status == {"queued": 1, "suppressed": 1}
    assert summary.by_reason == {"render_failed": 1}
    with db.reader() as session:
        failed = session.scalars(
            select(ReachMessage).where(ReachMessage.source_ref == ref, ReachMessage.customer_id == nameless)
        ).one()
        assert session.scalar(select(func.count(ShortLink.id)).where(ShortLink.source_ref == ref)) == 1
        counts = reach.accounting(session, workspace_id=workspace_id, source="broadcast", source_ref=ref)
    assert failed.status == "suppressed" and failed.reason == "render_failed" and failed.due_at is None
    last = failed.explanation[-1]
    assert last["reason"] == "render_failed" and "'name' is undefined" in last["error"]
    assert last["where"] == "sms.text, line 1, column 1"
    assert counts.total == 2


def test_a_template_that_does_not_compile_refuses_the_send(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = _customer(session, workspace_id=workspace_id, name="周八")
        ref = unique("broken")
        with pytest.raises(ValidationFailed) as refused:
            reach.send(
                session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=[customer],
                content={"sms": {"text": "{{ name "}}, purpose="marketing", channel_preference=["sms"],
                personalise=True, now=NOON,
            )  # fmt: skip
        assert "sms.text" in (refused.value.where or "")
        assert session.scalar(select(func.count(ReachMessage.id)).where(ReachMessage.source_ref == ref)) == 0


def test_without_personalise_content_is_stored_as_given(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = _customer(session, workspace_id=workspace_id, name="吴九")
        ref = unique("raw")
        reach.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=[customer],
            content={"sms": {"text": "{{ name }}"}}, purpose="marketing", channel_preference=["sms"], now=NOON,
        )  # fmt: skip
        stored = session.scalars(select(ReachMessage.content).where(ReachMessage.source_ref == ref)).one()
    assert stored == {"text": "{{ name }}"}


def test_a_click_is_recorded_once_per_message_and_link(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        first = _customer(session, workspace_id=workspace_id, name="甲")
        second = _customer(session, workspace_id=workspace_id, name="乙")
        ref = unique("clicks")
        reach.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=[first, second],
            content={"sms": {"text": "{{ link('https://a.example.com/x') }} {{ link('https://b.example.com/y') }}"}},
            purpose="marketing", channel_preference=["sms"], personalise=True, now=NOON,
        )  # fmt: skip
    with db.reader() as session:
        tokens = {
            (link.customer_id, link.url): link.token
            for link in session.scalars(select(ShortLink).where(ShortLink.source_ref == ref))
        }
    assert len(tokens) == 4
    for _ in range(3):
        with db.transaction() as session:
            assert (
                content.follow(session, token=tokens[(first, "https://a.example.com/x")])
                == "https://a.example.com/x"
            )
    with db.transaction() as session:
        content.follow(session, token=tokens[(second, "https://a.example.com/x")])
        content.follow(session, token=tokens[(first, "https://b.example.com/y")])
    with db.reader() as session:
        events = list(
            session.scalars(
                select(DomainEvent).where(
                    DomainEvent.workspace_id == workspace_id, DomainEvent.type == "reach.clicked"
                )
            )
        )
        counts = content.clicks(session, workspace_id=workspace_id, source="broadcast", source_ref=ref)
    mine = [e for e in events if e.payload["source_ref"] == ref]
    assert len(mine) == 3
    assert {(e.customer_id, e.payload["url"]) for e in mine} == {
        (first, "https://a.example.com/x"), (second, "https://a.example.com/x"), (first, "https://b.example.com/y"),
    }  # fmt: skip
    assert all(e.payload["message_id"] for e in mine)
    assert (counts.links, counts.clicked_links, counts.clicking_customers, counts.clicks) == (4, 3, 2, 5)
    assert counts.by_url == {"https://a.example.com/x": 2, "https://b.example.com/y": 1}


@pytest.mark.parametrize(
    "token",
    ["", "x", "A" * 22, "../../etc/passwd", "https://evil.example.com", "%00" * 8, "' OR 1=1 --" + "x" * 11],
)
def test_unknown_or_hostile_tokens_lead_nowhere(db: Database, token: str) -> None:
    with db.transaction() as session:
        assert content.follow(session, token=token) is None


def _statements_of_send(db: Database, workspace_id: int, customer_ids: list[int], ref: str) -> int:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    with db.transaction() as session:
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            summary = reach.send(
                session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=customer_ids,
                content={"sms": {"text": "{{ name }} {{ points }} {{ coupon_code | default('') }} {{ link('https://a.example.com/') }}"}},
                purpose="marketing", channel_preference=["sms"], personalise=True, now=NOON,
            )  # fmt: skip
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert summary.by_status == {"queued": len(customer_ids)}
    return len(seen)


def test_context_is_loaded_per_chunk_not_per_customer(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id)
        few = [
            _customer(session, workspace_id=workspace_id, name=unique("甲"), owner=owner.user_id)
            for _ in range(2)
        ]
        many = [
            _customer(session, workspace_id=workspace_id, name=unique("乙"), owner=owner.user_id)
            for _ in range(40)
        ]
    assert _statements_of_send(db, workspace_id, few, unique("few")) == _statements_of_send(
        db, workspace_id, many, unique("many")
    )


def test_static_content_is_rendered_once_and_loads_no_variables(db: Database, workspace_id: int) -> None:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    text = "春茶上新，到店领取 退订回T"
    with db.transaction() as session:
        customer_ids = [_customer(session, workspace_id=workspace_id, name=unique("丙")) for _ in range(3)]
        ref = unique("static")
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            summary = reach.send(
                session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=customer_ids,
                content={"sms": {"text": text}}, purpose="marketing", channel_preference=["sms"],
                personalise=True, now=NOON,
            )  # fmt: skip
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        stored = list(session.scalars(select(ReachMessage.content).where(ReachMessage.source_ref == ref)))
    assert summary.by_status == {"queued": 3}
    assert stored == [{"text": text}] * 3
    # no customer variables are read: neither points nor coupons
    assert not [s for s in seen if "points_account" in s or "coupon" in s]
    assert compile_content({"sms": {"text": text}}, {}).static
    assert not compile_content({"sms": {"text": "{{ name }}"}}, {}).static
