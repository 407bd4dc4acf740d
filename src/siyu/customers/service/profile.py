"""One customer seen whole: identities, consent in force, the merged timeline and the 360 view.

Read through the actor's visibility: staff get masked phones and only their own customers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.core.errors import PermissionDenied
from siyu.core.masking import mask_identity
from siyu.customers.models import (
    Consent,
    CustomerRollup,
    Identity,
)
from siyu.customers.schemas import (
    ConsentState,
    Customer360,
    CustomerProfile,
    IdentityOut,
    OwnerOut,
    RollupOut,
    TimelineItem,
)
from siyu.customers.service.paging import (
    clamp_limit,
    decode_cursor,
    encode_cursor,
    keyset_before,
)
from siyu.customers.service.search import ensure_visible, get_visible_customer
from siyu.events import service as events
from siyu.orders import service as orders

# order of kinds at the same instant on a timeline (newest first): an order before its event before consent
_TIMELINE_RANK = {"order": 3, "event": 2, "consent": 1}


def list_identities(session: Session, *, actor: Actor, customer_id: int) -> list[IdentityOut]:
    actor.require(Permission.READ)
    ensure_visible(session, actor=actor, customer_id=customer_id)
    rows = session.scalars(select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.id))
    return [
        IdentityOut(
            id=i.id,
            kind=i.kind,
            value=mask_identity(i.kind, i.value, masked=actor.sees_masked_phones),
            source=i.source,
            created_at=i.created_at,
        )
        for i in rows
    ]


def consents_in_force(session: Session, *, workspace_id: int, customer_id: int) -> list[ConsentState]:
    """The newest decision per (contact channel, purpose) of one customer."""
    rows = session.scalars(
        select(Consent)
        .where(Consent.workspace_id == workspace_id, Consent.customer_id == customer_id)
        .order_by(Consent.occurred_at, Consent.id)
    )
    newest: dict[tuple[str, str], Consent] = {}
    for row in rows:
        newest[(row.contact_channel, row.purpose)] = row
    return [
        ConsentState(
            contact_channel=c.contact_channel,
            purpose=c.purpose,
            status=c.status,
            source=c.source,
            occurred_at=c.occurred_at,
        )
        for _, c in sorted(newest.items())
    ]


def _timeline_consents(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    before: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[TimelineItem]:
    stmt = select(Consent).where(Consent.workspace_id == workspace_id, Consent.customer_id == customer_id)
    if before is not None:
        stmt = stmt.where(keyset_before(Consent.occurred_at, Consent.id, before, before_id))
    rows = session.scalars(stmt.order_by(Consent.occurred_at.desc(), Consent.id.desc()).limit(limit))
    return [
        TimelineItem(
            kind="consent",
            id=c.id,
            occurred_at=c.occurred_at,
            title=f"{c.contact_channel}/{c.purpose}: {c.status}",
            detail={"source": c.source},
        )
        for c in rows
    ]


def customer_timeline(
    session: Session, *, actor: Actor, customer_id: int, cursor: str | None = None, limit: int = 30
) -> tuple[list[TimelineItem], str | None]:
    """Orders, events and consent changes of one customer merged newest first, with a cursor for older ones."""
    actor.require(Permission.READ)
    ensure_visible(session, actor=actor, customer_id=customer_id)
    limit = clamp_limit(limit)
    bound: tuple[datetime, int, int] | None = None
    if cursor:
        time_text, rank, id_ = decode_cursor(cursor, arity=3, where="timeline_cursor")
        bound = (datetime.fromisoformat(time_text), int(rank), int(id_))

    def window(kind: str) -> tuple[datetime | None, int | None]:
        """The keyset bound of one source for its rank: entries after the cursor in timeline order."""
        if bound is None:
            return None, None
        time, rank, id_ = bound
        own = _TIMELINE_RANK[kind]
        if own < rank:  # at the cursor's instant, lower ranks come after it: keep the whole instant
            return time, None
        if own > rank:  # higher ranks at that instant were shown already; ids are positive, so 0 drops it
            return time, 0
        return time, id_

    items: list[TimelineItem] = []
    sources = {
        "order": orders.timeline_orders,
        "event": events.timeline_events,
        "consent": _timeline_consents,
    }
    for kind, source in sources.items():
        before, before_id = window(kind)
        items.extend(
            source(
                session,
                workspace_id=actor.workspace_id,
                customer_id=customer_id,
                before=before,
                before_id=before_id,
                limit=limit + 1,
            )
        )
    items.sort(key=lambda i: (i.occurred_at, _TIMELINE_RANK[i.kind], i.id), reverse=True)
    page = items[:limit]
    next_cursor = None
    if len(items) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last.occurred_at, _TIMELINE_RANK[last.kind], last.id)
    return page, next_cursor


def _owner(session: Session, *, workspace_id: int, user_id: int | None) -> OwnerOut | None:
    if user_id is None:
        return None
    try:
        member = auth.actor_for(session, user_id=user_id, workspace_id=workspace_id)
    except PermissionDenied:  # the owner left the workspace; the assignment is still shown
        return OwnerOut(user_id=user_id, display_name="")
    return OwnerOut(user_id=user_id, display_name=member.display_name)


def get_customer_360(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    timeline_cursor: str | None = None,
    timeline_limit: int = 30,
    recent_orders: int = 10,
) -> Customer360:
    """Everything about one customer this actor may see: profile, identities, rollup, recent orders with
    lines, the timeline (newest first, paged), consent in force and owner.
    """
    actor.require(Permission.READ)
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    rollup = session.get(CustomerRollup, customer_id)
    timeline, next_cursor = customer_timeline(
        session, actor=actor, customer_id=customer_id, cursor=timeline_cursor, limit=timeline_limit
    )
    return Customer360(
        profile=CustomerProfile.model_validate(customer),
        identities=list_identities(session, actor=actor, customer_id=customer_id),
        rollup=RollupOut.model_validate(rollup) if rollup else None,
        recent_orders=orders.customer_orders(
            session, workspace_id=actor.workspace_id, customer_id=customer_id, limit=recent_orders
        ),
        timeline=timeline,
        timeline_cursor=next_cursor,
        consents=consents_in_force(session, workspace_id=actor.workspace_id, customer_id=customer_id),
        owner=_owner(session, workspace_id=actor.workspace_id, user_id=customer.owner_user_id),
    )
