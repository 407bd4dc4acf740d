"""PIPL (个人信息保护法) rights of one person: export everything held about them, and erase them.

Erasure keeps the customer row as an anonymous stub so the brand's orders (and so its accounts) still
add up; identities, profile, attributes, events and consents go. Both are audited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.domain_events import DomainEvent, DomainEventType
from siyu.core.errors import Conflict, NotFound
from siyu.core.timeutil import utcnow
from siyu.customers import rollups
from siyu.customers import service as customers
from siyu.customers.models import (
    Consent,
    Customer,
    CustomerRollup,
    Gender,
    Identity,
    IdentityReview,
    MergeLog,
)
from siyu.events import service as events
from siyu.orders import service as orders
from siyu.tags import service as tags

EXPORT_FORMAT = "siyu.person-export.v1"


def _customer_in_workspace(session: Session, *, actor: Actor, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != actor.workspace_id:
        raise NotFound(f"customer {customer_id} does not exist in this workspace", where="customer_id")
    return customer


def _merge_history(session: Session, *, workspace_id: int, customer_id: int) -> list[MergeLog]:
    return list(
        session.scalars(
            select(MergeLog)
            .where(
                MergeLog.workspace_id == workspace_id,
                or_(MergeLog.survivor_id == customer_id, MergeLog.merged_id == customer_id),
            )
            .order_by(MergeLog.id)
        )
    )


def export_person(session: Session, *, actor: Actor, customer_id: int) -> dict[str, Any]:
    """Everything held about one person as a JSON-ready dict; audited as `customer.exported`.

    Holds the profile, identities (unmasked: the export is for the person), orders with lines, events,
    every consent decision, the rollup and the merge history. A merged record is exported via its
    survivor, which holds its identities, orders and events.
    """
    actor.require(Permission.EXPORT)
    customer = customers.get_visible_customer(session, actor=actor, customer_id=customer_id)
    ws = actor.workspace_id
    identities = session.scalars(
        select(Identity).where(Identity.customer_id == customer.id).order_by(Identity.id)
    )
    consents = session.scalars(
        select(Consent)
        .where(Consent.workspace_id == ws, Consent.customer_id == customer.id)
        .order_by(Consent.occurred_at, Consent.id)
    )
    rollup = session.get(CustomerRollup, customer.id)
    merged_records = session.scalars(
        select(Customer).where(Customer.workspace_id == ws, Customer.merged_into_id == customer.id)
    )
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "customer_id": customer.id,
        "profile": {
            "name": customer.name,
            "gender": customer.gender,
            "birthday": customer.birthday.isoformat() if customer.birthday else None,
            "city": customer.city,
            "attributes": customer.attributes,
            "owner_user_id": customer.owner_user_id,
            "first_channel_id": customer.first_channel_id,
            "created_at": customer.created_at.isoformat(),
            "updated_at": customer.updated_at.isoformat(),
        },
        "identities": [
            {"kind": i.kind, "value": i.value, "source": i.source, "created_at": i.created_at.isoformat()}
            for i in identities
        ],
        "orders": [
            o.model_dump(mode="json")
            for o in orders.customer_orders(session, workspace_id=ws, customer_id=customer.id, limit=None)
        ],
        "events": [
            e.model_dump(mode="json")
            for e in events.customer_events(session, workspace_id=ws, customer_id=customer.id)
        ],
        "consents": [
            {
                "contact_channel": c.contact_channel,
                "purpose": c.purpose,
                "status": c.status,
                "source": c.source,
                "occurred_at": c.occurred_at.isoformat(),
            }
            for c in consents
        ],
        "rollup": None
        if rollup is None
        else {
            "order_count": rollup.order_count,
            "net_revenue_cents": rollup.net_revenue_cents,
            "first_order_at": rollup.first_order_at.isoformat() if rollup.first_order_at else None,
            "last_order_at": rollup.last_order_at.isoformat() if rollup.last_order_at else None,
            "categories": rollup.categories,
        },
        "tags": [
            t.model_dump(mode="json")
            for t in tags.tags_of_customer(session, workspace_id=ws, customer_id=customer.id)
        ],
        "merged_records": [
            {"customer_id": m.id, "name": m.name, "city": m.city, "created_at": m.created_at.isoformat()}
            for m in merged_records
        ],
        "merge_history": [
            {
                "merge_log_id": m.id,
                "survivor_id": m.survivor_id,
                "merged_id": m.merged_id,
                "reason": m.reason,
                "created_at": m.created_at.isoformat(),
                "undone_at": m.undone_at.isoformat() if m.undone_at else None,
            }
            for m in _merge_history(session, workspace_id=ws, customer_id=customer.id)
        ],
    }
    audit.record(
        session,
        workspace_id=ws,
        actor_user_id=actor.user_id,
        action="customer.exported",
        target_type="customer",
        target_id=customer.id,
        detail={
            "format": EXPORT_FORMAT,
            "orders": len(document["orders"]),
            "events": len(document["events"]),
        },
    )
    return document


def _scrub_customer_row(customer: Customer, *, now: Any) -> None:
    customer.name = None
    customer.gender = Gender.UNKNOWN.value
    customer.birthday = None
    customer.city = None
    customer.attributes = {}
    customer.owner_user_id = None
    customer.erased_at = now
    customer.updated_at = now


def erase_person(session: Session, *, actor: Actor, customer_id: int) -> dict[str, int]:
    """Erase one person: identities, profile, attributes, events and consents go; orders stay, anonymous.

    The customer row stays with `erased_at` set (orders keep pointing at it so revenue still adds up);
    records merged into it are erased with it; personal values in merge logs, review evidence and domain
    event payloads are scrubbed. Refuses a merged record (erase its survivor) and an erased one.
    Returns counts of what was removed.
    """
    actor.require(Permission.ERASE)
    customer = _customer_in_workspace(session, actor=actor, customer_id=customer_id)
    ws = actor.workspace_id
    if customer.merged_into_id is not None:
        raise Conflict(
            f"customer {customer_id} was merged into customer {customer.merged_into_id}",
            where="customer_id",
            hint=f"erase customer {customer.merged_into_id}, which now holds this person's data",
            details={"merged_into_id": customer.merged_into_id},
        )
    if customer.erased_at is not None:
        raise Conflict(f"customer {customer_id} was erased already", where="customer_id")
    now = utcnow()
    # the person's data may also sit on records merged into this one (directly or in a chain)
    ids = [customer.id]
    frontier = [customer.id]
    while frontier:
        children = list(
            session.scalars(
                select(Customer.id).where(Customer.workspace_id == ws, Customer.merged_into_id.in_(frontier))
            )
        )
        frontier = [c for c in children if c not in ids]
        ids.extend(frontier)
    counts = {
        "identities": int(
            session.execute(
                delete(Identity).where(Identity.workspace_id == ws, Identity.customer_id.in_(ids))
            ).rowcount  # type: ignore[attr-defined]
        ),
        "consents": int(
            session.execute(
                delete(Consent).where(Consent.workspace_id == ws, Consent.customer_id.in_(ids))
            ).rowcount  # type: ignore[attr-defined]
        ),
        "events": sum(events.delete_customer_events(session, workspace_id=ws, customer_id=i) for i in ids),
        "tags": tags.delete_customer_tags(session, workspace_id=ws, customer_ids=ids),
        "orders_kept": len(orders.order_ids_of_customer(session, workspace_id=ws, customer_id=customer.id)),
    }
    for row in session.scalars(select(Customer).where(Customer.id.in_(ids))):
        _scrub_customer_row(row, now=now)
    # merge logs keep who merged what (ids), not the identity values that moved
    session.execute(
        update(MergeLog)
        .where(MergeLog.workspace_id == ws, or_(MergeLog.survivor_id.in_(ids), MergeLog.merged_id.in_(ids)))
        .values(moved={"erased": True})
    )
    session.execute(
        update(IdentityReview)
        .where(
            IdentityReview.workspace_id == ws,
            or_(IdentityReview.customer_a_id.in_(ids), IdentityReview.customer_b_id.in_(ids)),
        )
        .values(evidence={"erased": True})
    )
    session.execute(
        update(DomainEvent)
        .where(DomainEvent.workspace_id == ws, DomainEvent.customer_id.in_(ids))
        .values(payload={"erased": True})
    )
    # orders stay, so the order figures stay; the events behind last_event_at are gone: recompute the
    # same way a full rebuild would
    session.flush()
    rollups.refresh_rollups(session, workspace_id=ws, customer_ids=ids)
    domain_events.record(
        session,
        workspace_id=ws,
        type=DomainEventType.CUSTOMER_ERASED,
        customer_id=customer.id,
        payload={"records": len(ids)},
    )
    audit.record(
        session,
        workspace_id=ws,
        actor_user_id=actor.user_id,
        action="customer.erased",
        target_type="customer",
        target_id=customer.id,
        detail={**counts, "records": ids},
    )
    return counts
