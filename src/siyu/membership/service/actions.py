"""Points for actions (sign-up, review, referral, custom), spending and members' adjustments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.errors import ValidationFailed
from siyu.customers import service as customers
from siyu.membership.models import (
    Action,
    EntryKind,
    PointsEntry,
    TierBasis,
)
from siyu.membership.service.ledger import _ensure_customer, apply
from siyu.membership.service.rules import get_rules
from siyu.membership.service.tiers import evaluate_tier


def earn_for_action(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    action: Action | str,
    source_ref: str,
    points: int | None = None,
    at: datetime | None = None,
) -> PointsEntry | None:
    """Points for an action (sign-up, review, referral: the rules' fixed points; custom: `points`),
    once per (action, source_ref). None when the rules give the action no points."""
    try:
        action = Action(action)
    except ValueError:
        raise ValidationFailed(
            f"unknown action {action!r}", where="action", hint="one of " + ", ".join(a.value for a in Action)
        ) from None
    _ensure_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    rules = get_rules(session, workspace_id=workspace_id)
    if action is Action.CUSTOM:
        if not points or points < 0:
            raise ValidationFailed("a custom action needs its points", where="points", hint="e.g. 50")
        amount = points
    else:
        amount = {
            Action.SIGN_UP: rules.sign_up_points,
            Action.REVIEW: rules.review_points,
            Action.REFERRAL: rules.referral_points,
        }[action]
    if amount <= 0:
        return None
    entry = apply(
        session,
        workspace_id=workspace_id,
        customer_id=customer_id,
        kind=EntryKind.EARN,
        points=amount,
        source_kind=f"action:{action.value}",
        source_ref=source_ref,
        at=at,
    )
    if TierBasis(rules.tier_basis) is TierBasis.POINTS:
        evaluate_tier(session, workspace_id=workspace_id, customer_id=customer_id, at=at)
    return entry


def spend(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    points: int,
    source_ref: str,
    note: str | None = None,
) -> PointsEntry:
    """Use points (for a reward): refused beyond the balance; once per source_ref."""
    if points <= 0:
        raise ValidationFailed("spend a positive number of points", where="points")
    return apply(
        session,
        workspace_id=workspace_id,
        customer_id=customer_id,
        kind=EntryKind.SPEND,
        points=-points,
        source_kind="spend",
        source_ref=source_ref,
        note=note,
    )


def adjust(
    session: Session, *, actor: Actor, customer_id: int, points: int, reason: str, idempotency_key: str
) -> PointsEntry:
    """A member's correction: adds or takes points (never below zero), once per idempotency key."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    entry = apply(
        session,
        workspace_id=actor.workspace_id,
        customer_id=customer_id,
        kind=EntryKind.ADJUST,
        points=points,
        source_kind="adjust",
        source_ref=idempotency_key,
        note=reason[:200],
        actor_user_id=actor.user_id,
    )
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="points.adjusted",
        target_type="customer",
        target_id=customer_id,
        detail={"points": points, "reason": reason[:200], "entry_id": entry.id},
    )
    return entry


def earn_for_action_by_actor(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    action: Action | str,
    source_ref: str,
    points: int | None,
) -> PointsEntry | None:
    """A member (or an API client: the review system, the referral campaign) records an action."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return earn_for_action(
        session,
        workspace_id=actor.workspace_id,
        customer_id=customer_id,
        action=action,
        source_ref=source_ref,
        points=points,
    )
