"""Customer event reads: lists with cursors, a customer's events for the timeline and PIPL export/erase.

Recording events is the loader's job (`siyu.ingest`); reads stay within the actor's workspace.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound
from siyu.customers import service as customers
from siyu.customers.schemas import TimelineItem
from siyu.events.models import CustomerEvent
from siyu.events.schemas import EventOut, EventPage


def _visible_events(actor: Actor) -> Select[tuple[CustomerEvent]]:
    stmt = select(CustomerEvent).where(CustomerEvent.workspace_id == actor.workspace_id)
    if actor.sees_only_own_customers:
        stmt = stmt.where(CustomerEvent.customer_id.in_(customers.visible_customers(actor)))
    return stmt


def list_events(
    session: Session,
    *,
    actor: Actor,
    customer_id: int | None = None,
    type: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> EventPage:
    """Events newest first, filtered by customer, type and [start, end), one page at a time."""
    actor.require(Permission.READ)
    limit = customers.clamp_limit(limit)
    stmt = _visible_events(actor)
    if customer_id is not None:
        customers.ensure_visible(session, actor=actor, customer_id=customer_id)
        stmt = stmt.where(CustomerEvent.customer_id == customer_id)
    if type:
        stmt = stmt.where(CustomerEvent.type == type)
    if start is not None:
        stmt = stmt.where(CustomerEvent.occurred_at >= start)
    if end is not None:
        stmt = stmt.where(CustomerEvent.occurred_at < end)
    if cursor:
        occurred_at, event_id = customers.decode_time_id_cursor(cursor)
        stmt = stmt.where(
            customers.keyset_before(CustomerEvent.occurred_at, CustomerEvent.id, occurred_at, event_id)
        )
    rows = list(
        session.scalars(
            stmt.order_by(CustomerEvent.occurred_at.desc(), CustomerEvent.id.desc()).limit(limit + 1)
        )
    )
    page = rows[:limit]
    next_cursor = customers.encode_cursor(page[-1].occurred_at, page[-1].id) if len(rows) > limit else None
    return EventPage(items=[EventOut.model_validate(e) for e in page], next_cursor=next_cursor)


def get_event(session: Session, *, actor: Actor, event_id: int) -> EventOut:
    actor.require(Permission.READ)
    event = session.scalar(_visible_events(actor).where(CustomerEvent.id == event_id))
    if event is None:
        raise NotFound(f"event {event_id} does not exist in this workspace", where="event_id")
    return EventOut.model_validate(event)


def timeline_events(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    before: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[TimelineItem]:
    """A customer's events as timeline entries, newest first, after a keyset bound."""
    stmt = select(CustomerEvent).where(
        CustomerEvent.workspace_id == workspace_id, CustomerEvent.customer_id == customer_id
    )
    if before is not None:
        stmt = stmt.where(
            customers.keyset_before(CustomerEvent.occurred_at, CustomerEvent.id, before, before_id)
        )
    rows = session.scalars(
        stmt.order_by(CustomerEvent.occurred_at.desc(), CustomerEvent.id.desc()).limit(limit)
    )
    return [
        TimelineItem(
            kind="event",
            id=e.id,
            occurred_at=e.occurred_at,
            title=e.type,
            detail={"source": e.source, "properties": e.properties},
        )
        for e in rows
    ]


def customer_events(session: Session, *, workspace_id: int, customer_id: int) -> list[EventOut]:
    """Every event of one customer, oldest first (PIPL export; the caller checked permissions)."""
    rows = session.scalars(
        select(CustomerEvent)
        .where(CustomerEvent.workspace_id == workspace_id, CustomerEvent.customer_id == customer_id)
        .order_by(CustomerEvent.occurred_at, CustomerEvent.id)
    )
    return [EventOut.model_validate(e) for e in rows]


def delete_customer_events(session: Session, *, workspace_id: int, customer_id: int) -> int:
    """Delete every event of one customer (PIPL erasure); returns how many went."""
    result = session.execute(
        delete(CustomerEvent).where(
            CustomerEvent.workspace_id == workspace_id, CustomerEvent.customer_id == customer_id
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def event_count_by_customer(
    workspace_id: int,
    *,
    type: str | None = None,
    occurred_after: datetime | None = None,
    occurred_until: datetime | None = None,
) -> Select[tuple[int | None, int]]:
    """Per customer with at least one matching event: (customer_id, value = how many), for segment rules;
    events of `type` (any type when None) that occurred in (occurred_after, occurred_until]."""
    conditions = [CustomerEvent.workspace_id == workspace_id, CustomerEvent.customer_id.is_not(None)]
    if type is not None:
        conditions.append(CustomerEvent.type == type)
    if occurred_after is not None:
        conditions.append(CustomerEvent.occurred_at > occurred_after)
    if occurred_until is not None:
        conditions.append(CustomerEvent.occurred_at <= occurred_until)
    return (
        select(CustomerEvent.customer_id, func.count(CustomerEvent.id).label("value"))
        .where(*conditions)
        .group_by(CustomerEvent.customer_id)
    )


def occurrences(*, workspace_id: int, type: str) -> Select[tuple[int | None, datetime]]:
    """Every event of `type` of a known customer, as (`customer_id`, `occurred_at`), for the analytical
    domains (funnels) to compose in SQL."""
    return select(
        CustomerEvent.customer_id.label("customer_id"), CustomerEvent.occurred_at.label("occurred_at")
    ).where(
        CustomerEvent.workspace_id == workspace_id,
        CustomerEvent.customer_id.is_not(None),
        CustomerEvent.type == type,
    )


def activity(*, workspace_id: int) -> Select[tuple[int | None, datetime]]:
    """Every event of a known customer, of any type, as (`customer_id`, `occurred_at`)."""
    return select(
        CustomerEvent.customer_id.label("customer_id"), CustomerEvent.occurred_at.label("occurred_at")
    ).where(CustomerEvent.workspace_id == workspace_id, CustomerEvent.customer_id.is_not(None))
