"""Customers picked out in bulk for other domains: which of a list of ids an actor may see, whom a list of
identity values names, and the building blocks (columns, id subqueries) that segment rules compile to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.customers.models import (
    Consent,
    ConsentPurpose,
    ConsentStatus,
    ContactChannel,
    Customer,
    CustomerRollup,
    Gender,
    Identity,
    IdentityKind,
)
from siyu.customers.schemas import CustomerSummary
from siyu.customers.service.search import _first_phones, _identity_candidates, _summary_of, _visible_condition

_CHUNK = 2000  # ids or values per IN list: well below SQLite's and PostgreSQL's parameter limits
T = TypeVar("T")


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def visible_customer_ids(session: Session, *, actor: Actor, customer_ids: Iterable[int]) -> set[int]:
    """The ids among `customer_ids` of live customers this actor may see (others are left out silently:
    the caller reports them as not found, never as existing elsewhere)."""
    wanted = sorted(set(customer_ids))
    found: set[int] = set()
    for chunk in _chunks(wanted):
        found.update(
            session.scalars(select(Customer.id).where(Customer.id.in_(chunk), *_visible_condition(actor)))
        )
    return found


def customer_ids_by_identity(
    session: Session, *, actor: Actor, kind: str, values: Iterable[str]
) -> tuple[dict[str, int], list[str]]:
    """Resolve identity values of one kind (a phone in any spelling the importer accepts) to the live
    customers this actor may see: (value as given → customer id, values that name nobody)."""
    kind = kind.strip().lower()
    if not kind:
        raise ValidationFailed("give the identity kind of the values", where="kind", hint="e.g. phone")
    given = list(dict.fromkeys(v.strip() for v in values if v and v.strip()))
    spelling_of: dict[str, list[str]] = {}
    for value in given:
        for candidate in _identity_candidates(kind, value):
            spelling_of.setdefault(candidate, []).append(value)
    resolved: dict[str, int] = {}
    candidates = list(spelling_of)
    for chunk in _chunks(candidates):
        rows = session.execute(
            select(Identity.value, Identity.customer_id)
            .join(Customer, Customer.id == Identity.customer_id)
            .where(
                Identity.workspace_id == actor.workspace_id,
                Identity.kind == kind,
                Identity.value.in_(chunk),
                *_visible_condition(actor),
            )
        )
        for stored, customer_id in rows:
            for value in spelling_of[stored]:
                resolved.setdefault(value, customer_id)
    return resolved, [v for v in given if v not in resolved]


# --- building blocks of segment rules ---------------------------------------------------------------


@dataclass(frozen=True)
class RuleColumns:
    """The columns a rule may test on a live customer's row (the customer and its rollup, outer-joined).

    Rollup columns are NULL for a customer without a rollup row; counts and sums should be read through
    `coalesce(…, 0)`.
    """

    customer_id: InstrumentedAttribute[int]
    profile: dict[str, InstrumentedAttribute[Any]]
    attributes: InstrumentedAttribute[dict[str, Any]]
    rollup: dict[str, InstrumentedAttribute[Any]]


RULE_COLUMNS = RuleColumns(
    customer_id=Customer.id,
    profile={
        "name": Customer.name,
        "gender": Customer.gender,
        "birthday": Customer.birthday,
        "city": Customer.city,
        "created_at": Customer.created_at,
        "owner_user_id": Customer.owner_user_id,
    },
    attributes=Customer.attributes,
    rollup={
        "order_count": CustomerRollup.order_count,
        "net_revenue_cents": CustomerRollup.net_revenue_cents,
        "avg_order_value_cents": CustomerRollup.avg_order_value_cents,
        "first_order_at": CustomerRollup.first_order_at,
        "last_order_at": CustomerRollup.last_order_at,
        "last_event_at": CustomerRollup.last_event_at,
        "first_channel_id": CustomerRollup.first_channel_id,
        "last_channel_id": CustomerRollup.last_channel_id,
        "categories": CustomerRollup.categories,
    },
)


def live_customer_ids(workspace_id: int) -> Select[tuple[int]]:
    """The ids of the live customers (not merged away, not erased) of a workspace, with their rollup
    outer-joined so that `RULE_COLUMNS` may be used in further conditions."""
    return (
        select(Customer.id)
        .select_from(Customer)
        .outerjoin(CustomerRollup, CustomerRollup.customer_id == Customer.id)
        .where(
            Customer.workspace_id == workspace_id,
            Customer.merged_into_id.is_(None),
            Customer.erased_at.is_(None),
        )
    )


def customer_ids_with_identity(workspace_id: int, kind: str) -> Select[tuple[int]]:
    """The ids of customers holding an identity of `kind` (never NULL: safe inside NOT IN)."""
    return select(Identity.customer_id).where(Identity.workspace_id == workspace_id, Identity.kind == kind)


def identity_kinds_in_use(session: Session, *, workspace_id: int) -> set[str]:
    """The identity kinds that at least one customer of the workspace holds."""
    return set(session.scalars(select(Identity.kind).where(Identity.workspace_id == workspace_id).distinct()))


def customer_ids_with_consent(workspace_id: int, *, contact_channel: str, purpose: str) -> Select[tuple[int]]:
    """The ids of customers whose decision in force for (channel, purpose) is a grant: their newest
    decision by (occurred_at, id), as `consents_in_force` reads it."""
    newer = aliased(Consent)
    return select(Consent.customer_id).where(
        Consent.workspace_id == workspace_id,
        Consent.contact_channel == contact_channel,
        Consent.purpose == purpose,
        Consent.status == ConsentStatus.GRANTED.value,
        ~exists().where(
            newer.customer_id == Consent.customer_id,
            newer.contact_channel == Consent.contact_channel,
            newer.purpose == Consent.purpose,
            or_(
                newer.occurred_at > Consent.occurred_at,
                and_(newer.occurred_at == Consent.occurred_at, newer.id > Consent.id),
            ),
        ),
    )


def unsubscribed_everywhere(workspace_id: int, *, purpose: str = "marketing") -> Select[Any]:
    """`customer_id` and `at` (their latest withdrawal) of the customers who decided about `purpose` on
    at least one channel and whose decision in force is a withdrawal on every channel they decided on
    (unsubscribed everywhere: no channel the brand may use for it is left)."""
    newer = aliased(Consent)
    in_force = (
        select(Consent.customer_id, Consent.status, Consent.occurred_at)
        .where(
            Consent.workspace_id == workspace_id,
            Consent.purpose == purpose,
            ~exists().where(
                newer.customer_id == Consent.customer_id,
                newer.contact_channel == Consent.contact_channel,
                newer.purpose == Consent.purpose,
                or_(
                    newer.occurred_at > Consent.occurred_at,
                    and_(newer.occurred_at == Consent.occurred_at, newer.id > Consent.id),
                ),
            ),
        )
        .subquery()
    )
    granted = func.sum(case((in_force.c.status == ConsentStatus.GRANTED.value, 1), else_=0))
    return (
        select(in_force.c.customer_id.label("customer_id"), func.max(in_force.c.occurred_at).label("at"))
        .group_by(in_force.c.customer_id)
        .having(granted == 0)
    )


CONTACT_CHANNELS = tuple(c.value for c in ContactChannel)
CONSENT_PURPOSES = tuple(p.value for p in ConsentPurpose)
GENDERS = tuple(g.value for g in Gender)
BUILTIN_IDENTITY_KINDS = tuple(k.value for k in IdentityKind)


def customer_summaries(
    session: Session, *, actor: Actor, customer_ids: Sequence[int]
) -> list[CustomerSummary]:
    """List rows of these customers, in the order given, leaving out those this actor may not see
    (phones masked as for any list)."""
    actor.require(Permission.READ)
    ids = list(dict.fromkeys(customer_ids))
    rows: dict[int, tuple[Customer, CustomerRollup | None]] = {}
    for chunk in _chunks(ids):
        for customer, rollup in session.execute(
            select(Customer, CustomerRollup)
            .outerjoin(CustomerRollup, CustomerRollup.customer_id == Customer.id)
            .where(Customer.id.in_(chunk), *_visible_condition(actor))
        ):
            rows[customer.id] = (customer, rollup)
    phones = _first_phones(session, list(rows))
    return [_summary_of(*rows[i], phones.get(i), actor=actor) for i in ids if i in rows]
