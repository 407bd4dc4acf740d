"""Points rules per workspace, and the arithmetic they imply (points per yuan, expiry months)."""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.db import is_postgres
from siyu.core.errors import Conflict
from siyu.core.timeutil import utcnow
from siyu.membership.models import (
    PointsRules,
    TierBasis,
)
from siyu.membership.schemas import RulesIn, RulesOut


class InsufficientPoints(Conflict):
    """A debit larger than the balance."""


def _insert(session: Session) -> Any:
    return pg_insert if is_postgres(session) else sqlite_insert


def add_months(value: datetime, months: int) -> datetime:
    """`value` plus whole calendar months (31 Jan + 1 month = 28 or 29 Feb)."""
    month = value.month - 1 + months
    year, month = value.year + month // 12, month % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def get_rules(session: Session, *, workspace_id: int) -> PointsRules:
    """The workspace's points rules (defaults, unsaved, until a member sets them)."""
    rules = session.get(PointsRules, workspace_id)
    if rules is None:
        rules = PointsRules(
            workspace_id=workspace_id,
            points_per_yuan=1,
            sign_up_points=0,
            review_points=0,
            referral_points=0,
            expiry_months=None,
            tier_basis=TierBasis.SPEND.value,
        )
    return rules


def rules_out(rules: PointsRules) -> RulesOut:
    return RulesOut(
        points_per_yuan=rules.points_per_yuan,
        sign_up_points=rules.sign_up_points,
        review_points=rules.review_points,
        referral_points=rules.referral_points,
        expiry_months=rules.expiry_months,
        tier_basis=TierBasis(rules.tier_basis),
        updated_at=rules.updated_at,
    )


def set_rules(session: Session, *, actor: Actor, body: RulesIn) -> PointsRules:
    """Replace the workspace's points rules; entries already written keep the points they gave."""
    actor.require(Permission.MANAGE)
    rules = session.get(PointsRules, actor.workspace_id)
    if rules is None:
        rules = PointsRules(workspace_id=actor.workspace_id)
        session.add(rules)
    for name, value in body.model_dump().items():
        setattr(rules, name, value.value if isinstance(value, TierBasis) else value)
    rules.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="points_rules.set",
        target_type="points_rules",
        target_id=actor.workspace_id,
        detail=body.model_dump(mode="json"),
    )
    return rules


def points_for_amount(rules: PointsRules, cents: int) -> int:
    """Points for a net amount paid: per whole yuan (¥32.90 at 1 point per ¥ earns 32)."""
    return max(0, cents) // 100 * rules.points_per_yuan
