"""Customers picked out in bulk for other domains: which of a list of ids an actor may see, and whom a list
of identity values (phones in any spelling, member ids, …) names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor
from siyu.core.errors import ValidationFailed
from siyu.customers.models import Customer, Identity
from siyu.customers.service.search import _identity_candidates, _visible_condition

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
