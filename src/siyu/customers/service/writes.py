"""Single-customer writes: profile fields, owner, consent — each with its domain event and audit row.

Each needs the `write` permission and reaches only customers the actor may see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import PermissionDenied, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers.models import (
    Consent,
    ConsentPurpose,
    ConsentStatus,
    ContactChannel,
    Customer,
    Gender,
)
from siyu.customers.schemas import (
    ConsentState,
    ProfileUpdate,
)
from siyu.customers.service.profile import consents_in_force
from siyu.customers.service.search import get_visible_customer


def update_profile(session: Session, *, actor: Actor, customer_id: int, changes: ProfileUpdate) -> Customer:
    """Change profile fields given in `changes`; emits customer.updated with the changed fields."""
    actor.require(Permission.WRITE)
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    given = changes.model_fields_set
    changed: dict[str, Any] = {}
    if "name" in given:
        name = (changes.name or "").strip() or None
        if name is not None and len(name) > 200:
            raise ValidationFailed("name is longer than 200 characters", where="name")
        if name != customer.name:
            customer.name = name
            changed["name"] = name
    if "gender" in given:
        gender = (changes.gender or Gender.UNKNOWN).value
        if gender != customer.gender:
            customer.gender = gender
            changed["gender"] = gender
    if "birthday" in given and changes.birthday != customer.birthday:
        if changes.birthday is not None and changes.birthday > utcnow().date():
            raise ValidationFailed(f"birthday {changes.birthday} is in the future", where="birthday")
        customer.birthday = changes.birthday
        changed["birthday"] = changes.birthday.isoformat() if changes.birthday else None
    if "city" in given:
        city = (changes.city or "").strip() or None
        if city != customer.city:
            customer.city = city
            changed["city"] = city
    if "attributes" in given and changes.attributes:
        attributes = dict(customer.attributes or {})
        for key, value in changes.attributes.items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        if attributes != customer.attributes:
            customer.attributes = attributes  # a new dict: JSON columns do not track in-place changes
            changed["attributes"] = sorted(changes.attributes)
    if not changed:
        return customer
    customer.updated_at = utcnow()
    domain_events.record(
        session,
        workspace_id=actor.workspace_id,
        type=DomainEventType.CUSTOMER_UPDATED,
        customer_id=customer.id,
        payload={"fields": sorted(changed)},
    )
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="customer.updated",
        target_type="customer",
        target_id=customer.id,
        detail={"fields": sorted(changed)},
    )
    return customer


def assign_owner(session: Session, *, actor: Actor, customer_id: int, owner_user_id: int | None) -> Customer:
    """Assign the customer to a member of the workspace (or to nobody); emits customer.owner_changed."""
    actor.require(Permission.WRITE)
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    if owner_user_id is not None:
        try:
            auth.actor_for(session, user_id=owner_user_id, workspace_id=actor.workspace_id)
        except PermissionDenied:
            raise ValidationFailed(
                f"user {owner_user_id} is not an active member of this workspace",
                where="owner_user_id",
                hint="add them as a member first, or pick another member",
            ) from None
    previous = customer.owner_user_id
    if previous == owner_user_id:
        return customer
    customer.owner_user_id = owner_user_id
    customer.updated_at = utcnow()
    domain_events.record(
        session,
        workspace_id=actor.workspace_id,
        type=DomainEventType.OWNER_CHANGED,
        customer_id=customer.id,
        payload={"from": previous, "to": owner_user_id},
    )
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="customer.owner_changed",
        target_type="customer",
        target_id=customer.id,
        detail={"from": previous, "to": owner_user_id},
    )
    return customer


def record_consent(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    contact_channel: str,
    purpose: str,
    status: str,
    source: str = "",
    occurred_at: datetime | None = None,
) -> ConsentState:
    """Record a consent decision and return the one now in force for that channel and purpose.

    Every decision is kept (history); consent.changed is emitted only when the decision in force changes
    (a repeated grant, or an older decision arriving late, changes nothing in force).
    """
    actor.require(Permission.WRITE)
    get_visible_customer(session, actor=actor, customer_id=customer_id)
    return _record_consent(
        session,
        workspace_id=actor.workspace_id,
        customer_id=customer_id,
        contact_channel=contact_channel,
        purpose=purpose,
        status=status,
        source=source,
        occurred_at=occurred_at,
    )


def record_system_consent(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    contact_channel: str,
    purpose: str,
    status: str,
    source: str,
    occurred_at: datetime | None = None,
) -> ConsentState:
    """`record_consent` for a decision the customer made through a system, not a member: an SMS reply
    "T", an email's one-click unsubscribe. The caller has checked the customer belongs to the workspace."""
    return _record_consent(
        session,
        workspace_id=workspace_id,
        customer_id=customer_id,
        contact_channel=contact_channel,
        purpose=purpose,
        status=status,
        source=source,
        occurred_at=occurred_at,
    )


def _record_consent(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    contact_channel: str,
    purpose: str,
    status: str,
    source: str,
    occurred_at: datetime | None,
) -> ConsentState:
    try:
        channel = ContactChannel(contact_channel).value
        purpose_value = ConsentPurpose(purpose).value
        status_value = ConsentStatus(status).value
    except ValueError as exc:
        raise ValidationFailed(
            str(exc),
            where="contact_channel/purpose/status",
            hint="channels: "
            + ", ".join(c.value for c in ContactChannel)
            + "; purposes: marketing, transactional; status: granted, withdrawn",
        ) from None
    now = utcnow()
    when = occurred_at or now
    if when.tzinfo is None:
        raise ValidationFailed("occurred_at has no time zone", where="occurred_at", hint="send UTC, e.g. …Z")
    if when > now:
        raise ValidationFailed(f"occurred_at {when.isoformat()} is in the future", where="occurred_at")

    def in_force() -> ConsentState | None:
        for state in consents_in_force(session, workspace_id=workspace_id, customer_id=customer_id):
            if state.contact_channel == channel and state.purpose == purpose_value:
                return state
        return None

    before = in_force()
    session.add(
        Consent(
            workspace_id=workspace_id,
            customer_id=customer_id,
            contact_channel=channel,
            purpose=purpose_value,
            status=status_value,
            source=source,
            occurred_at=when,
            created_at=now,
        )
    )
    session.flush()
    after = in_force()
    assert after is not None
    if before is None or before.status != after.status:
        domain_events.record(
            session,
            workspace_id=workspace_id,
            type=DomainEventType.CONSENT_CHANGED,
            customer_id=customer_id,
            payload={
                "contact_channel": channel,
                "purpose": purpose_value,
                "from": before.status if before else None,
                "to": after.status,
                "source": source,
            },
            occurred_at=when,
        )
    return after
