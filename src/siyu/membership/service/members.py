"""A member as the 360 page and the API show them: balance, ledger, tier and its history, coupons."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.coupons import service as coupons
from siyu.customers import service as customers
from siyu.membership.models import (
    CustomerTier,
    PointsAccount,
    Tier,
    TierChange,
)
from siyu.membership.schemas import EntryOut, MemberView, TierChangeOut
from siyu.membership.service.ledger import balance, ledger
from siyu.membership.service.rules import get_rules
from siyu.membership.service.tiers import _tiers


def member_view(session: Session, *, actor: Actor, customer_id: int) -> MemberView:
    """A customer's membership: balance, ledger, tier and its history, and the coupons they hold."""
    actor.require(Permission.READ)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    workspace_id = actor.workspace_id
    names = {t.id: t.name for t in _tiers(session, workspace_id)}
    current = session.get(CustomerTier, customer_id)
    rules = get_rules(session, workspace_id=workspace_id)
    history = session.scalars(
        select(TierChange)
        .where(TierChange.workspace_id == workspace_id, TierChange.customer_id == customer_id)
        .order_by(TierChange.id.desc())
        .limit(50)
    )
    return MemberView(
        customer_id=customer_id,
        balance=balance(session, workspace_id=workspace_id, customer_id=customer_id),
        tier=names.get(current.tier_id) if current is not None and current.tier_id is not None else None,
        tier_since=current.since if current is not None and current.tier_id is not None else None,
        basis=rules.tier_basis,
        basis_value=current.basis_value if current is not None else 0,
        entries=ledger(session, workspace_id=workspace_id, customer_id=customer_id, limit=50),
        tier_history=[
            TierChangeOut(
                id=c.id,
                from_tier=names.get(c.from_tier_id) if c.from_tier_id is not None else None,
                to_tier=names.get(c.to_tier_id) if c.to_tier_id is not None else None,
                direction=c.direction,
                basis=c.basis,
                basis_value=c.basis_value,
                changed_at=c.changed_at,
            )
            for c in history
        ],
        coupons=coupons.coupons_of_customer(session, workspace_id=workspace_id, customer_id=customer_id),
    )


def customer_ledger(session: Session, *, actor: Actor, customer_id: int, limit: int = 100) -> list[EntryOut]:
    actor.require(Permission.READ)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return ledger(session, workspace_id=actor.workspace_id, customer_id=customer_id, limit=limit)


def member_facts(
    session: Session, *, workspace_id: int, customer_ids: Iterable[int]
) -> dict[int, tuple[int, str | None]]:
    """(points balance, tier name or None) of the given customers that have either, in two queries
    per thousand ids (message templates render these for a whole audience)."""
    ids = sorted(set(customer_ids))
    found: dict[int, tuple[int, str | None]] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for customer_id, points in session.execute(
            select(PointsAccount.customer_id, PointsAccount.balance).where(
                PointsAccount.workspace_id == workspace_id, PointsAccount.customer_id.in_(chunk)
            )
        ):
            found[customer_id] = (int(points), None)
        for customer_id, name in session.execute(
            select(CustomerTier.customer_id, Tier.name)
            .join(Tier, Tier.id == CustomerTier.tier_id)
            .where(CustomerTier.workspace_id == workspace_id, CustomerTier.customer_id.in_(chunk))
        ):
            found[customer_id] = (found.get(customer_id, (0, None))[0], name)
    return found
