"""What reach needs to know about many customers at once: are they live, their addresses (identities),
the consent in force per channel and purpose, and their time zone. For system callers (the send gateway
and its workers), which pass the workspace explicitly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.db import among, among_chunk
from siyu.customers.models import Consent, Customer, Identity
from siyu.customers.service.search import _identity_candidates
from siyu.customers.service.selection import _chunks


@dataclass
class ContactFacts:
    customer_id: int
    live: bool  # not merged into another record, not erased
    timezone: str | None  # the profile's `timezone` attribute, if any (an IANA name)
    identities: dict[str, list[str]] = field(default_factory=dict)  # kind → values, oldest first
    consents: dict[tuple[str, str], str] = field(default_factory=dict)  # (channel, purpose) → status

    def first(self, kind: str) -> str | None:
        values = self.identities.get(kind)
        return values[0] if values else None


def contact_facts(
    session: Session, *, workspace_id: int, customer_ids: Iterable[int]
) -> dict[int, ContactFacts]:
    """Facts of the given customers of this workspace; ids of other workspaces or of nobody are left out."""
    wanted = sorted(set(customer_ids))
    facts: dict[int, ContactFacts] = {}
    size = among_chunk(session)
    for chunk in (wanted[i : i + size] for i in range(0, len(wanted), size)):
        for customer_id, merged_into, erased_at, attributes in session.execute(
            select(Customer.id, Customer.merged_into_id, Customer.erased_at, Customer.attributes).where(
                Customer.workspace_id == workspace_id, among(session, Customer.id, chunk)
            )
        ):
            zone = (attributes or {}).get("timezone")
            facts[customer_id] = ContactFacts(
                customer_id=customer_id,
                live=merged_into is None and erased_at is None,
                timezone=zone if isinstance(zone, str) and zone else None,
            )
        found = [c for c in chunk if c in facts]
        if not found:
            continue
        for customer_id, kind, value in session.execute(
            select(Identity.customer_id, Identity.kind, Identity.value)
            .where(Identity.workspace_id == workspace_id, among(session, Identity.customer_id, found))
            .order_by(Identity.id)
        ):
            facts[customer_id].identities.setdefault(kind, []).append(value)
        # the newest decision per (channel, purpose) is in force: later rows overwrite earlier ones
        for customer_id, channel, purpose, status in session.execute(
            select(Consent.customer_id, Consent.contact_channel, Consent.purpose, Consent.status)
            .where(Consent.workspace_id == workspace_id, among(session, Consent.customer_id, found))
            .order_by(Consent.occurred_at, Consent.id)
        ):
            facts[customer_id].consents[(channel, purpose)] = status
    return facts


def customer_id_by_identity(session: Session, *, workspace_id: int, kind: str, value: str) -> int | None:
    """The live customer of this workspace holding the identity (any spelling the importer accepts)."""
    candidates = _identity_candidates(kind, value)
    if not candidates:
        return None
    return session.scalar(
        select(Identity.customer_id)
        .join(Customer, Customer.id == Identity.customer_id)
        .where(
            Identity.workspace_id == workspace_id,
            Identity.kind == kind,
            Identity.value.in_(candidates),
            Customer.merged_into_id.is_(None),
            Customer.erased_at.is_(None),
        )
        .order_by(Identity.id)
        .limit(1)
    )


@dataclass
class Profile:
    """The profile fields of one customer as message templates use them."""

    customer_id: int
    name: str | None
    city: str | None
    gender: str
    birthday: str | None  # ISO date
    attributes: dict[str, Any]
    owner_user_id: int | None


def profiles(session: Session, *, workspace_id: int, customer_ids: Iterable[int]) -> dict[int, Profile]:
    """Profiles of the given customers of this workspace (one query per chunk of ids); others left out."""
    found: dict[int, Profile] = {}
    wanted = sorted(set(customer_ids))
    size = among_chunk(session)
    for chunk in (wanted[i : i + size] for i in range(0, len(wanted), size)):
        for row in session.execute(
            select(
                Customer.id,
                Customer.name,
                Customer.city,
                Customer.gender,
                Customer.birthday,
                Customer.attributes,
                Customer.owner_user_id,
            ).where(Customer.workspace_id == workspace_id, among(session, Customer.id, chunk))
        ):
            found[row.id] = Profile(
                customer_id=row.id,
                name=row.name,
                city=row.city,
                gender=row.gender,
                birthday=row.birthday.isoformat() if row.birthday else None,
                attributes=dict(row.attributes or {}),
                owner_user_id=row.owner_user_id,
            )
    return found


def names_of(session: Session, *, workspace_id: int, customer_ids: Iterable[int]) -> dict[int, str]:
    """The names of these live customers of this workspace (those without a name are left out), for
    system callers that print them (a referral poster, the public landing's masked greeting)."""
    wanted = sorted(set(customer_ids))
    found: dict[int, str] = {}
    for chunk in _chunks(wanted):
        for customer_id, name in session.execute(
            select(Customer.id, Customer.name).where(
                Customer.workspace_id == workspace_id,
                Customer.id.in_(chunk),
                Customer.merged_into_id.is_(None),
                Customer.erased_at.is_(None),
                Customer.name.is_not(None),
            )
        ):
            if name:
                found[customer_id] = name
    return found
