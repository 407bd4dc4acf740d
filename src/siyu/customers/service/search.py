"""Which customers an actor may see, and finding them: search, lookup by identity, counts, list export.

Staff see only their own customers and masked phones; merged and erased records are never listed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.errors import NotFound, PermissionDenied, ValidationFailed
from siyu.core.masking import mask_identity
from siyu.customers import identity_values
from siyu.customers.models import (
    Customer,
    CustomerRollup,
    Identity,
)
from siyu.customers.schemas import (
    CustomerFilter,
    CustomerPage,
    CustomerSummary,
)
from siyu.customers.service.paging import (
    MAX_LIMIT,
    clamp_limit,
    decode_time_id_cursor,
    encode_cursor,
    keyset_before,
)

_NON_DIGITS = re.compile(r"\D")
_PHONE_LIKE = re.compile(r"^[+\d][\d\s\-()]{5,}$")


# --- visibility -------------------------------------------------------------------------------------


def visible_customers(actor: Actor) -> Select[tuple[int]]:
    """The ids of the customers this actor may see: their workspace, live records, staff only their own."""
    query = select(Customer.id).where(
        Customer.workspace_id == actor.workspace_id,
        Customer.merged_into_id.is_(None),
        Customer.erased_at.is_(None),
    )
    if actor.sees_only_own_customers:
        query = query.where(Customer.owner_user_id == actor.user_id)
    return query


def _visible_condition(actor: Actor) -> list[ColumnElement[bool]]:
    conditions = [
        Customer.workspace_id == actor.workspace_id,
        Customer.merged_into_id.is_(None),
        Customer.erased_at.is_(None),
    ]
    if actor.sees_only_own_customers:
        conditions.append(Customer.owner_user_id == actor.user_id)
    return conditions


def get_visible_customer(session: Session, *, actor: Actor, customer_id: int) -> Customer:
    """The customer if this actor may see it, else NotFound (never a hint that it exists elsewhere)."""
    customer = session.get(Customer, customer_id)
    missing = NotFound(f"customer {customer_id} does not exist in this workspace", where="customer_id")
    if customer is None or customer.workspace_id != actor.workspace_id:
        raise missing
    if actor.sees_only_own_customers and customer.owner_user_id != actor.user_id:
        raise missing
    if customer.merged_into_id is not None:
        raise NotFound(
            f"customer {customer_id} was merged into customer {customer.merged_into_id}",
            where="customer_id",
            hint=f"open customer {customer.merged_into_id} instead",
            details={"merged_into_id": customer.merged_into_id},
        )
    if customer.erased_at is not None:
        raise NotFound(f"customer {customer_id} was erased", where="customer_id")
    return customer


def ensure_visible(session: Session, *, actor: Actor, customer_id: int) -> None:
    """NotFound unless this actor may see the customer."""
    get_visible_customer(session, actor=actor, customer_id=customer_id)


def ensure_assigned(session: Session, *, actor: Actor, customer_id: int) -> None:
    """Like `ensure_visible`, for acting on the customer as their member: a staff member acting on a
    customer of the workspace assigned to someone else is refused (PermissionDenied, said plainly),
    where reads answer NotFound."""
    customer = session.get(Customer, customer_id)
    if (
        customer is not None
        and customer.workspace_id == actor.workspace_id
        and actor.sees_only_own_customers
        and customer.owner_user_id != actor.user_id
    ):
        raise PermissionDenied(
            f"customer {customer_id} is not assigned to you",
            where="customer_id",
            hint="staff write only to the customers assigned to them; ask an admin to assign this customer",
        )
    get_visible_customer(session, actor=actor, customer_id=customer_id)


# --- identity values --------------------------------------------------------------------------------


def _phone_candidates(text: str) -> list[str]:
    """Stored spellings a typed phone number may have (E.164 first)."""
    candidates: list[str] = []
    normalized = identity_values.normalize("phone", text)
    if normalized:
        candidates.append(normalized)
    # junk numbers normalise to nothing but may still be stored from before a denylist change
    digits = _NON_DIGITS.sub("", text)
    if digits:
        if len(digits) == 11 and digits.startswith("1"):
            candidates.append("+86" + digits)
        if digits.startswith("0086"):
            candidates.append("+" + digits[2:])
        candidates.extend(["+" + digits, digits])
    return list(dict.fromkeys(candidates))


def _identity_candidates(kind: str | None, value: str) -> list[str]:
    value = value.strip()
    if kind == "phone" or (kind is None and _PHONE_LIKE.match(value)):
        return _phone_candidates(value) + ([value] if kind is None else [])
    if kind is not None:
        normalized = identity_values.normalize(kind, value)
        if normalized:
            return list(dict.fromkeys([normalized, value]))
    return list(dict.fromkeys([value, value.lower()]))


# --- reads ------------------------------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _first_phones(session: Session, customer_ids: Sequence[int]) -> dict[int, str]:
    if not customer_ids:
        return {}
    rows = session.execute(
        select(Identity.customer_id, Identity.value)
        .where(Identity.customer_id.in_(customer_ids), Identity.kind == "phone")
        .order_by(Identity.customer_id, Identity.id)
    )
    phones: dict[int, str] = {}
    for customer_id, value in rows:
        phones.setdefault(customer_id, value)
    return phones


def search_customers(
    session: Session,
    *,
    actor: Actor,
    query: str | None = None,
    filters: CustomerFilter | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> CustomerPage:
    """Customers matching `query` (a phone in any spelling, any identity value, or part of a name) and
    `filters`, newest first, one page at a time (keyset over (created_at, id): stable while rows arrive).
    """
    actor.require(Permission.READ)
    limit = clamp_limit(limit)
    stmt = (
        select(
            Customer,
            CustomerRollup.order_count,
            CustomerRollup.net_revenue_cents,
            CustomerRollup.last_order_at,
        )
        .outerjoin(CustomerRollup, CustomerRollup.customer_id == Customer.id)
        .where(*_visible_condition(actor))
    )
    text = (query or "").strip()
    if text:
        matches_identity = Customer.id.in_(
            select(Identity.customer_id).where(
                Identity.workspace_id == actor.workspace_id,
                Identity.value.in_(_identity_candidates(None, text)),
            )
        )
        if _PHONE_LIKE.match(text):
            # a number is never a name: the identity index alone answers, without scanning names
            stmt = stmt.where(matches_identity)
        else:
            name_matches = Customer.name.ilike(f"%{_escape_like(text)}%", escape="\\")
            stmt = stmt.where(or_(matches_identity, name_matches))
    f = filters or CustomerFilter()
    if f.channel_id is not None:
        stmt = stmt.where(Customer.first_channel_id == f.channel_id)
    if f.owner_user_id is not None:
        stmt = stmt.where(Customer.owner_user_id == f.owner_user_id)
    if f.city:
        stmt = stmt.where(Customer.city == f.city.strip())
    if f.has_identity_kind:
        stmt = stmt.where(
            Customer.id.in_(
                select(Identity.customer_id).where(
                    Identity.workspace_id == actor.workspace_id, Identity.kind == f.has_identity_kind
                )
            )
        )
    if f.created_from is not None:
        stmt = stmt.where(Customer.created_at >= f.created_from)
    if f.created_to is not None:
        stmt = stmt.where(Customer.created_at < f.created_to)
    if f.last_order_from is not None:
        stmt = stmt.where(CustomerRollup.last_order_at >= f.last_order_from)
    if f.last_order_to is not None:
        stmt = stmt.where(CustomerRollup.last_order_at < f.last_order_to)
    if f.min_orders:
        stmt = stmt.where(CustomerRollup.order_count >= f.min_orders)
    if cursor:
        created_at, customer_id = decode_time_id_cursor(cursor)
        stmt = stmt.where(keyset_before(Customer.created_at, Customer.id, created_at, customer_id))
    rows = session.execute(
        stmt.order_by(Customer.created_at.desc(), Customer.id.desc()).limit(limit + 1)
    ).all()
    page = rows[:limit]
    phones = _first_phones(session, [row[0].id for row in page])
    items = [
        CustomerSummary(
            id=c.id,
            name=c.name,
            gender=c.gender,
            city=c.city,
            phone=(
                mask_identity("phone", phones[c.id], masked=actor.sees_masked_phones)
                if c.id in phones
                else None
            ),
            owner_user_id=c.owner_user_id,
            first_channel_id=c.first_channel_id,
            created_at=c.created_at,
            order_count=order_count or 0,
            net_revenue_cents=net or 0,
            last_order_at=last_order_at,
        )
        for c, order_count, net, last_order_at in page
    ]
    next_cursor = encode_cursor(page[-1][0].created_at, page[-1][0].id) if len(rows) > limit else None
    return CustomerPage(items=items, next_cursor=next_cursor)


EXPORT_MAX_ROWS = 100_000


def export_customer_list(
    session: Session,
    *,
    actor: Actor,
    query: str | None = None,
    filters: CustomerFilter | None = None,
    max_rows: int = EXPORT_MAX_ROWS,
) -> list[CustomerSummary]:
    """Every customer a search finds (up to `max_rows`), for a list download; audited as `customers.exported`."""
    actor.require(Permission.EXPORT)
    rows: list[CustomerSummary] = []
    cursor = None
    while len(rows) < max_rows:
        page = search_customers(
            session, actor=actor, query=query, filters=filters, cursor=cursor, limit=MAX_LIMIT
        )
        rows.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    rows = rows[:max_rows]
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="customers.exported",
        target_type="customer_list",
        detail={
            "rows": len(rows),
            "query": query,
            "filters": (filters or CustomerFilter()).model_dump(mode="json", exclude_none=True),
        },
    )
    return rows


def count_customers(session: Session, *, workspace_id: int) -> int:
    """Live customers of a workspace (merged and erased records excluded)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(
                Customer.workspace_id == workspace_id,
                Customer.merged_into_id.is_(None),
                Customer.erased_at.is_(None),
            )
        )
        or 0
    )


@functools.cache
def _lookup_statement(own_customers_only: bool) -> Select[Any]:
    """The lookup as one statement, built once: lookups by phone are the hot path of shop integrations
    and the staff app, and building a statement costs more than running it. It selects the summary's
    columns, not entities: loading ORM objects into the session cost more than the query itself."""
    phone_identity = aliased(Identity)
    first_phone = (
        select(phone_identity.value)
        .where(phone_identity.customer_id == Customer.id, phone_identity.kind == "phone")
        .order_by(phone_identity.id)
        .limit(1)
        .scalar_subquery()
    )
    conditions = [
        Identity.workspace_id == bindparam("workspace_id"),
        Identity.kind == bindparam("kind"),
        Identity.value.in_(bindparam("values", expanding=True)),
        Customer.workspace_id == bindparam("workspace_id"),
        Customer.merged_into_id.is_(None),
        Customer.erased_at.is_(None),
    ]
    if own_customers_only:
        conditions.append(Customer.owner_user_id == bindparam("owner_user_id"))
    return (
        select(
            Customer.id,
            Customer.name,
            Customer.gender,
            Customer.city,
            first_phone.label("phone"),
            Customer.owner_user_id,
            Customer.first_channel_id,
            Customer.created_at,
            func.coalesce(CustomerRollup.order_count, 0).label("order_count"),
            func.coalesce(CustomerRollup.net_revenue_cents, 0).label("net_revenue_cents"),
            CustomerRollup.last_order_at,
        )
        .join(Identity, Identity.customer_id == Customer.id)
        .outerjoin(CustomerRollup, CustomerRollup.customer_id == Customer.id)
        .where(*conditions)
        .limit(1)
    )


def lookup_by_identity(session: Session, *, actor: Actor, kind: str, value: str) -> CustomerSummary:
    """The customer holding this identity (the value in any spelling the importer accepts), or NotFound."""
    actor.require(Permission.READ)
    kind = kind.strip().lower()
    if not kind or not value.strip():
        raise ValidationFailed("give both an identity kind and a value", where="kind/value")
    candidates = _identity_candidates(kind, value)
    params: dict[str, object] = {"workspace_id": actor.workspace_id, "kind": kind, "values": candidates}
    if actor.sees_only_own_customers:
        params["owner_user_id"] = actor.user_id
    row = session.execute(_lookup_statement(actor.sees_only_own_customers), params).first()
    if row is None:
        raise NotFound(f"no customer with {kind} {value!r} in this workspace", where="value")
    fields = row._asdict()
    if fields["phone"]:
        fields["phone"] = mask_identity("phone", fields["phone"], masked=actor.sees_masked_phones)
    return CustomerSummary(**fields)


def _summary(session: Session, *, actor: Actor, customer_id: int) -> CustomerSummary:
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    rollup = session.get(CustomerRollup, customer_id)
    phone = _first_phones(session, [customer_id]).get(customer_id)
    return _summary_of(customer, rollup, phone, actor=actor)


def _summary_of(
    customer: Customer, rollup: CustomerRollup | None, phone: str | None, *, actor: Actor
) -> CustomerSummary:
    return CustomerSummary(
        id=customer.id,
        name=customer.name,
        gender=customer.gender,
        city=customer.city,
        phone=mask_identity("phone", phone, masked=actor.sees_masked_phones) if phone else None,
        owner_user_id=customer.owner_user_id,
        first_channel_id=customer.first_channel_id,
        created_at=customer.created_at,
        order_count=rollup.order_count if rollup else 0,
        net_revenue_cents=rollup.net_revenue_cents if rollup else 0,
        last_order_at=rollup.last_order_at if rollup else None,
    )


def get_customer_summary(session: Session, *, actor: Actor, customer_id: int) -> CustomerSummary:
    """One customer as a list row shows it."""
    actor.require(Permission.READ)
    return _summary(session, actor=actor, customer_id=customer_id)
