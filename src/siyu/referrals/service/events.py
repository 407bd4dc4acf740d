"""The referral consumer of the domain-event outbox: paid orders qualify waiting invites and accrue
agents' commissions, refunds reverse them, merges reject invites between what turned out to be one
person. Read in id order with a cursor, like coupons' and membership's consumers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEvent, DomainEventType
from siyu.core.timeutil import utcnow
from siyu.referrals.models import ReferralEventCursor
from siyu.referrals.service import agents
from siyu.referrals.service.invites import qualify_on_order, reject_same_person

_ORDER_EVENTS = (
    str(DomainEventType.ORDER_PLACED),
    str(DomainEventType.ORDER_UPDATED),
    str(DomainEventType.ORDER_REFUNDED),
)
_MERGED = str(DomainEventType.IDENTITY_MERGED)


def _cursor(session: Session, workspace_id: int) -> ReferralEventCursor:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = pg_insert if is_postgres(session) else sqlite_insert
    session.execute(
        insert(ReferralEventCursor)
        .values(workspace_id=workspace_id, last_event_id=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    stmt = select(ReferralEventCursor).where(ReferralEventCursor.workspace_id == workspace_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def process_events(session: Session, *, workspace_id: int, batch: int = 2000) -> int:
    """Read the workspace's order and merge events after the cursor and apply them; returns how many
    were read (call until 0). Concurrent runs wait for the cursor row's lock; every effect is keyed, so
    reading an event twice changes nothing."""
    cursor = _cursor(session, workspace_id)
    events = list(
        session.execute(
            select(
                DomainEvent.id,
                DomainEvent.type,
                DomainEvent.customer_id,
                DomainEvent.payload,
                DomainEvent.occurred_at,
            )
            .where(
                DomainEvent.workspace_id == workspace_id,
                DomainEvent.id > cursor.last_event_id,
                DomainEvent.type.in_((*_ORDER_EVENTS, _MERGED)),
            )
            .order_by(DomainEvent.id)
            .limit(batch)
        )
    )
    buyers = sorted({c for _i, t, c, _p, _o in events if t in _ORDER_EVENTS and c is not None})
    agent_of = agents.agents_of_invitees(session, workspace_id=workspace_id, customer_ids=buyers)
    for _id, type_, customer_id, payload, occurred_at in events:
        if type_ == _MERGED:
            if customer_id is not None and payload.get("merged_id"):
                reject_same_person(
                    session,
                    workspace_id=workspace_id,
                    survivor_id=customer_id,
                    merged_id=int(payload["merged_id"]),
                )
            continue
        external_id = payload.get("external_id")
        if customer_id is None or not external_id:
            continue
        status = str(payload.get("status", ""))
        paid = int(payload.get("paid_cents") or 0)
        refunded = int(payload.get("refunded_cents") or 0)
        # placed paid, or paid later (an update): waiting invites qualify once, whichever event says so
        if status in agents.EARNING_STATUSES:
            qualify_on_order(
                session,
                workspace_id=workspace_id,
                customer_id=customer_id,
                order_ref=str(external_id),
                paid_cents=paid,
                at=occurred_at or utcnow(),
            )
        agent = agent_of.get(customer_id)
        # an agent earns on orders placed since they were made one
        if agent is not None and agent.customer_id != customer_id and occurred_at >= agent.created_at:
            order_id = payload.get("order_id")
            agents.record_order(
                session,
                agent=agent,
                invitee_customer_id=customer_id,
                order_id=int(order_id) if order_id is not None else None,
                order_ref=str(external_id),
                status=status,
                paid_cents=paid,
                refunded_cents=refunded,
            )
    if events:
        cursor.last_event_id = events[-1][0]
        cursor.updated_at = utcnow()
    return len(events)


def process_all(session: Session, *, workspace_id: int) -> int:
    """Read until the outbox holds nothing new; returns how many events were read."""
    total = 0
    while True:
        read = process_events(session, workspace_id=workspace_id)
        total += read
        if read == 0:
            return total
