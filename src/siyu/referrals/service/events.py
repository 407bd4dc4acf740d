"""The referral consumer of the domain-event outbox: paid orders qualify waiting invites and accrue
agents' commissions, refunds reverse them, merges reject invites between what turned out to be one
person. Read in commit order through the shared reader (consumer "referrals"), like the coupons' and
membership's consumers."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core import domain_events
from siyu.core.domain_events import DomainEventType
from siyu.core.timeutil import utcnow
from siyu.referrals.service import agents
from siyu.referrals.service.invites import qualify_on_order, reject_same_person

_ORDER_EVENTS = (
    str(DomainEventType.ORDER_PLACED),
    str(DomainEventType.ORDER_UPDATED),
    str(DomainEventType.ORDER_REFUNDED),
)
_MERGED = str(DomainEventType.IDENTITY_MERGED)
CONSUMER = "referrals"  # its place in domain_event_cursor


def process_events(session: Session, *, workspace_id: int, batch: int = 2000) -> int:
    """Read the workspace's next order and merge events in commit order and apply them; returns how
    many were read (call until it reads fewer than `batch`). Concurrent runs wait for the cursor row's
    lock; every effect is keyed, so reading an event twice changes nothing."""
    read = domain_events.read_after(
        session, consumer=CONSUMER, workspace_id=workspace_id, limit=batch, types=(*_ORDER_EVENTS, _MERGED)
    )
    if read.position != read.start:
        domain_events.advance(session, consumer=CONSUMER, workspace_id=workspace_id, position=read.position)
    events = [(e.id, e.type, e.customer_id, e.payload or {}, e.occurred_at) for e in read.events]
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
    return len(events)


def process_all(session: Session, *, workspace_id: int, batch: int = 2000) -> int:
    """Read until the outbox holds nothing new; returns how many events were read."""
    total = 0
    while True:
        read = process_events(session, workspace_id=workspace_id, batch=batch)
        total += read
        if read < batch:
            return total
