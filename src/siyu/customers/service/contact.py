"""What reach needs to know about many customers at once: are they live, their addresses (identities),
the consent in force per channel and purpose, and their time zone. For system callers (the send gateway
and its workers), which pass the workspace explicitly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
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


def _live_and_zone(
    session: Session, *, workspace_id: int, customer_ids: list[int]
) -> dict[int, ContactFacts]:
    """The facts of these customers of the workspace without identities and consents: live or not, and
    the time zone, taken out of the attributes by the database."""
    customer = Customer.__table__.c
    return {
        customer_id: ContactFacts(
            customer_id=customer_id, live=merged_into is None and erased_at is None, timezone=zone or None
        )
        for customer_id, merged_into, erased_at, zone in session.connection()
        .execute(
            select(
                customer.id,
                customer.merged_into_id,
                customer.erased_at,
                customer.attributes["timezone"].as_string(),
            ).where(customer.workspace_id == workspace_id, among(session, customer.id, customer_ids))
        )
        .all()
    }


def contact_facts(
    session: Session, *, workspace_id: int, customer_ids: Iterable[int]
) -> dict[int, ContactFacts]:
    """Facts of the given customers of this workspace; ids of other workspaces or of nobody are left out.

    Three statements per chunk of ids, read as plain rows (no ORM loading: the gateway reads these for
    every customer it decides), the time zone taken out of the attributes by the database."""
    wanted = sorted(set(customer_ids))
    facts: dict[int, ContactFacts] = {}
    size = among_chunk(session)
    connection = session.connection()
    identity, consent = Identity.__table__.c, Consent.__table__.c
    for chunk in (wanted[i : i + size] for i in range(0, len(wanted), size)):
        facts.update(_live_and_zone(session, workspace_id=workspace_id, customer_ids=chunk))
        found = [c for c in chunk if c in facts]
        if not found:
            continue
        for customer_id, kind, value in connection.execute(
            select(identity.customer_id, identity.kind, identity.value)
            .where(identity.workspace_id == workspace_id, among(session, identity.customer_id, found))
            .order_by(identity.id)
        ).all():
            facts[customer_id].identities.setdefault(kind, []).append(value)
        # the newest decision per (channel, purpose) is in force: later rows overwrite earlier ones
        for customer_id, channel, purpose, status in connection.execute(
            select(consent.customer_id, consent.contact_channel, consent.purpose, consent.status)
            .where(consent.workspace_id == workspace_id, among(session, consent.customer_id, found))
            .order_by(consent.occurred_at, consent.id)
        ).all():
            facts[customer_id].consents[(channel, purpose)] = status
    return facts


def reach_facts(
    session: Session,
    *,
    workspace_id: int,
    customer_ids: Iterable[int],
    kinds: Iterable[str],
    consents: Iterable[tuple[str, str]],
) -> dict[int, ContactFacts]:
    """What the send gateway reads of each customer: live or not, the time zone, the first identity (the
    oldest) of each of `kinds`, and the consent in force (the newest decision) for each (channel,
    purpose) of `consents` — the facts `contact_facts` gives, narrowed to these. Three statements per
    chunk of ids, the database picking the first identity and the newest decision (row_number), so a
    few rows come back per customer; every lookup is by customer id, whatever the planner's statistics
    (a correlated `ORDER BY id LIMIT 1` per customer walks a whole index when they are missing)."""
    kinds, wanted_consents = sorted(set(kinds)), set(consents)
    identity, consent = Identity.__table__.c, Consent.__table__.c
    wanted = sorted(set(customer_ids))
    facts: dict[int, ContactFacts] = {}
    size = among_chunk(session)
    connection = session.connection()
    for chunk in (wanted[i : i + size] for i in range(0, len(wanted), size)):
        facts.update(_live_and_zone(session, workspace_id=workspace_id, customer_ids=chunk))
        found = [c for c in chunk if c in facts]
        if not found:
            continue
        if kinds:
            first = (
                select(
                    identity.customer_id,
                    identity.kind,
                    identity.value,
                    func.row_number()
                    .over(partition_by=(identity.customer_id, identity.kind), order_by=identity.id)
                    .label("n"),
                )
                .where(
                    identity.workspace_id == workspace_id,
                    among(session, identity.customer_id, found),
                    identity.kind.in_(kinds),
                )
                .subquery()
            )
            for customer_id, kind, value in connection.execute(
                select(first.c.customer_id, first.c.kind, first.c.value).where(first.c.n == 1)
            ).all():
                facts[customer_id].identities[kind] = [value]
        if wanted_consents:
            newest = (
                select(
                    consent.customer_id,
                    consent.contact_channel,
                    consent.purpose,
                    consent.status,
                    func.row_number()
                    .over(
                        partition_by=(consent.customer_id, consent.contact_channel, consent.purpose),
                        order_by=(consent.occurred_at.desc(), consent.id.desc()),
                    )
                    .label("n"),
                )
                .where(
                    consent.workspace_id == workspace_id,
                    among(session, consent.customer_id, found),
                    consent.contact_channel.in_(sorted({c for c, _ in wanted_consents})),
                    consent.purpose.in_(sorted({p for _, p in wanted_consents})),
                )
                .subquery()
            )
            for customer_id, channel, purpose, status in connection.execute(
                select(
                    newest.c.customer_id, newest.c.contact_channel, newest.c.purpose, newest.c.status
                ).where(newest.c.n == 1)
            ).all():
                if (channel, purpose) in wanted_consents:
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
