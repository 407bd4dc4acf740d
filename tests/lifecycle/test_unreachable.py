"""Churn by unreachability: a buyer who unsubscribed everywhere (and is no one's WeCom friend), or who
deleted the staff on WeCom with no friend left there, is churned with cause `unreachable`, and leaves
churn once reachable again; leads stay leads. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from siyu.core.db import Database
from siyu.customers import service as customers
from siyu.lifecycle import service as lifecycle
from siyu.lifecycle.models import CustomerStage, StageTransition
from siyu.wecom.models import WecomFollow
from tests.factories import api_client, make_customer, make_member, make_order
from tests.wecom.conftest import Corp, corp, fake  # noqa: F401  (fixtures)
from tests.wecom.fake_wecom import FakeWecom
from tests.wecom.test_callbacks import contact_event, deliver


def _stage(db: Database, customer_id: int) -> str:
    with db.reader() as session:
        return str(
            session.scalar(select(CustomerStage.stage).where(CustomerStage.customer_id == customer_id))
        )


def _last_cause(db: Database, customer_id: int) -> str:
    with db.reader() as session:
        return str(
            session.scalars(
                select(StageTransition.cause)
                .where(StageTransition.customer_id == customer_id)
                .order_by(StageTransition.id.desc())
            ).first()
        )


def test_unsubscribed_everywhere_churns_a_buyer(db: Database, workspace_id: int) -> None:
    now = datetime.now(UTC)
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id).actor
        gone, half, lead = (make_customer(session, workspace_id=workspace_id) for _ in range(3))
        for buyer in (gone, half):
            make_order(
                session, workspace_id=workspace_id, customer_id=buyer.id, placed_at=now - timedelta(days=3)
            )
        for person in (gone, half, lead):
            for channel in ("sms", "email"):
                customers.record_consent(
                    session,
                    actor=actor,
                    customer_id=person.id,
                    contact_channel=channel,
                    purpose="marketing",
                    status="granted",
                    occurred_at=now - timedelta(days=2),
                )
        for person, channels in ((gone, ("sms", "email")), (half, ("sms",)), (lead, ("sms", "email"))):
            for channel in channels:
                customers.record_consent(
                    session,
                    actor=actor,
                    customer_id=person.id,
                    contact_channel=channel,
                    purpose="marketing",
                    status="withdrawn",
                    occurred_at=now - timedelta(days=1),
                )
        # a withdrawal from transactional messages alone leaves marketing as it was
        customers.record_consent(
            session,
            actor=actor,
            customer_id=half.id,
            contact_channel="email",
            purpose="transactional",
            status="withdrawn",
            occurred_at=now - timedelta(days=1),
        )
    with db.transaction() as session:
        lifecycle.sweep(session, actor=actor, now=now)
    assert (_stage(db, gone.id), _last_cause(db, gone.id)) == ("churned", "unreachable")
    assert _stage(db, half.id) == "new"  # still reachable by email
    assert _stage(db, lead.id) == "lead"
    with db.transaction() as session:
        customers.record_consent(
            session,
            actor=actor,
            customer_id=gone.id,
            contact_channel="sms",
            purpose="marketing",
            status="granted",
        )
    with db.transaction() as session:
        lifecycle.sweep(session, actor=actor, now=now + timedelta(hours=1))
    assert _stage(db, gone.id) == "new"


def test_deleting_the_staff_on_wecom_churns_a_buyer_until_they_are_a_friend_again(
    db: Database,
    corp: Corp,  # noqa: F811
    fake: FakeWecom,  # noqa: F811
) -> None:
    external, client = "wmEXT" + uuid.uuid4().hex[:12], api_client(db)
    clock = iter(range(1_780_000_000, 1_780_001_000, 10))

    def event(change: str, *, userid: str, external: str) -> str:
        # each callback its own CreateTime: WeCom's retries (same message, same time) are dropped
        return contact_event(change, userid=userid, external=external, created=next(clock))

    fake.add_friend("zhangsan", external)
    fake.add_friend("lisi", external)
    deliver(client, corp, event("add_external_contact", userid="zhangsan", external=external))
    deliver(client, corp, event("add_external_contact", userid="lisi", external=external))
    with db.transaction() as session:
        customer_id = session.scalars(
            select(WecomFollow.customer_id).where(WecomFollow.external_userid == external)
        ).first()
        assert customer_id is not None
        make_order(session, workspace_id=corp.workspace_id, customer_id=customer_id)
    actor = corp.owner.actor

    def sweep() -> str:
        with db.transaction() as session:
            lifecycle.sweep(session, actor=actor)
        return _stage(db, customer_id)

    # staff deleting the customer is not the customer leaving, even when no friend is left
    deliver(client, corp, event("del_external_contact", userid="lisi", external=external))
    assert sweep() == "new"
    deliver(client, corp, event("del_external_contact", userid="zhangsan", external=external))
    assert sweep() == "new"
    deliver(client, corp, event("add_external_contact", userid="zhangsan", external=external))
    deliver(client, corp, event("add_external_contact", userid="lisi", external=external))
    deliver(client, corp, event("del_follow_user", userid="zhangsan", external=external))
    assert sweep() == "new"  # lisi still has them as a friend
    deliver(client, corp, event("del_follow_user", userid="lisi", external=external))
    assert sweep() == "churned" and _last_cause(db, customer_id) == "unreachable"
    with db.reader() as session:
        assert set(lifecycle.unreachable_since(session, workspace_id=corp.workspace_id)) == {customer_id}
    deliver(client, corp, event("add_external_contact", userid="lisi", external=external))
    assert sweep() == "new"


def test_the_funnel_counts_who_got_at_least_that_far(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id).actor
        for purchases in (0, 0, 1, 1, 2, 3, 4, 6):
            customer = make_customer(session, workspace_id=workspace_id)
            for i in range(purchases):
                make_order(
                    session,
                    workspace_id=workspace_id,
                    customer_id=customer.id,
                    placed_at=datetime.now(UTC) - timedelta(days=400 - i),
                )
    with db.reader() as session:
        steps = lifecycle.funnel(session, actor=actor)
    assert [(s.stage, s.customers) for s in steps] == [("lead", 8), ("new", 6), ("active", 4), ("loyal", 2)]
