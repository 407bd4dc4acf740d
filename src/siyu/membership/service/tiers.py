"""Tiers on rolling 12-month spend or points: evaluation, history, and the coupon pack on upgrade."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.coupons.models import IssueSource
from siyu.membership.models import (
    CustomerTier,
    EntryKind,
    PointsAccount,
    PointsEntry,
    Tier,
    TierBasis,
    TierChange,
)
from siyu.membership.schemas import TierIn, TierOut
from siyu.membership.service.rules import _insert, get_rules
from siyu.orders import service as orders

ROLLING = timedelta(days=365)


def _tier_out(tier: Tier) -> TierOut:
    return TierOut(
        id=tier.id,
        name=tier.name,
        threshold=tier.threshold,
        coupon_template_ids=[int(i) for i in (tier.benefits or {}).get("coupon_template_ids", [])],
    )


def list_tiers(session: Session, *, workspace_id: int) -> list[TierOut]:
    return [_tier_out(t) for t in _tiers(session, workspace_id)]


def _tiers(session: Session, workspace_id: int) -> list[Tier]:
    return list(
        session.scalars(select(Tier).where(Tier.workspace_id == workspace_id).order_by(Tier.threshold))
    )


def create_tier(session: Session, *, actor: Actor, body: TierIn) -> TierOut:
    """A tier reached at `threshold` of the rules' basis; its coupon pack is issued on each upgrade."""
    actor.require(Permission.MANAGE)
    name = " ".join(body.name.split())
    if not name:
        raise ValidationFailed("the tier needs a name", where="name", hint="e.g. 金卡")
    for tier in _tiers(session, actor.workspace_id):
        if tier.name == name:
            raise Conflict(f"a tier {name!r} exists already", where="name")
        if tier.threshold == body.threshold:
            raise Conflict(f"tier {tier.name!r} has threshold {body.threshold} already", where="threshold")
    for template_id in body.coupon_template_ids:
        coupons.get_template(session, workspace_id=actor.workspace_id, template_id=template_id)
    tier = Tier(
        workspace_id=actor.workspace_id,
        name=name,
        threshold=body.threshold,
        benefits={"coupon_template_ids": list(dict.fromkeys(body.coupon_template_ids))},
        created_at=utcnow(),
    )
    session.add(tier)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="tier.created",
        target_type="member_tier",
        target_id=tier.id,
        detail={"name": name, "threshold": body.threshold},
    )
    return _tier_out(tier)


def basis_value(
    session: Session, *, workspace_id: int, customer_id: int, basis: TierBasis, at: datetime
) -> int:
    """The customer's rolling 12-month value: net spend on paid orders (cents), or points earned."""
    if basis is TierBasis.SPEND:
        spend = orders.order_measure_by_customer(
            workspace_id, measure="sum", placed_after=at - ROLLING, placed_until=at
        ).subquery()
        value = session.scalar(select(spend.c.value).where(spend.c.customer_id == customer_id))
        return int(value or 0)
    earned = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.workspace_id == workspace_id,
            PointsEntry.customer_id == customer_id,
            PointsEntry.kind == EntryKind.EARN.value,
            PointsEntry.created_at > at - ROLLING,
            PointsEntry.created_at <= at,
        )
    )
    return int(earned or 0)


def evaluate_tier(
    session: Session, *, workspace_id: int, customer_id: int, at: datetime | None = None
) -> TierChange | None:
    """Put the customer in the highest tier their rolling value reaches (none below the lowest); a change
    is recorded with its direction, and an upgrade issues the new tier's coupon pack (once per change)."""
    now = at or utcnow()
    rules = get_rules(session, workspace_id=workspace_id)
    basis = TierBasis(rules.tier_basis)
    tiers = _tiers(session, workspace_id)
    session.execute(
        _insert(session)(CustomerTier)
        .values(workspace_id=workspace_id, customer_id=customer_id, tier_id=None, basis_value=0, since=now)
        .on_conflict_do_nothing()
    )
    stmt = select(CustomerTier).where(CustomerTier.customer_id == customer_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    current = session.scalars(stmt.execution_options(populate_existing=True)).one()
    value = basis_value(session, workspace_id=workspace_id, customer_id=customer_id, basis=basis, at=now)
    reached = [t for t in tiers if t.threshold <= value]
    target = reached[-1] if reached else None
    current.basis_value = value
    target_id = target.id if target else None
    if target_id == current.tier_id:
        return None
    rank = {t.id: position for position, t in enumerate(tiers)}
    before = rank.get(current.tier_id, -1) if current.tier_id is not None else -1
    after = rank[target_id] if target_id is not None else -1
    change = TierChange(
        workspace_id=workspace_id,
        customer_id=customer_id,
        from_tier_id=current.tier_id,
        to_tier_id=target_id,
        direction="up" if after > before else "down",
        basis=basis.value,
        basis_value=value,
        changed_at=now,
    )
    session.add(change)
    session.flush()
    current.tier_id = target_id
    current.since = now
    issued: list[int] = []
    if change.direction == "up" and target is not None:
        for template_id in (target.benefits or {}).get("coupon_template_ids", []):
            try:
                coupon = coupons.issue(
                    session,
                    workspace_id=workspace_id,
                    template_id=int(template_id),
                    customer_id=customer_id,
                    source_kind=IssueSource.TIER_UPGRADE,
                    source_ref=f"tier:{target.id}",
                    idempotency_key=f"tier-change:{change.id}",
                    at=now,
                )
            except (Conflict, NotFound):
                continue  # a capped or archived template: the upgrade stands without that coupon
            issued.append(coupon.id)
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type=DomainEventType.TIER_CHANGED,
        customer_id=customer_id,
        payload={
            "from_tier_id": change.from_tier_id,
            "to_tier_id": change.to_tier_id,
            "direction": change.direction,
            "coupon_ids": issued,
        },
        occurred_at=now,
    )
    return change


def evaluate_tiers(session: Session, *, workspace_id: int, at: datetime | None = None) -> int:
    """Re-evaluate every member with a tier or points (downgrades as spend leaves the 12-month window);
    returns how many changed."""
    ids = set(
        session.scalars(select(CustomerTier.customer_id).where(CustomerTier.workspace_id == workspace_id))
    )
    ids |= set(
        session.scalars(select(PointsAccount.customer_id).where(PointsAccount.workspace_id == workspace_id))
    )
    return sum(
        1
        for customer_id in sorted(ids)
        if evaluate_tier(session, workspace_id=workspace_id, customer_id=customer_id, at=at) is not None
    )
