"""Dormant reactivation rate: of the customers a message reached while they were dormant (沉睡, the
lifecycle stage), how many bought within N days of it. Definition in docs/metrics.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core.db import days_between
from siyu.core.errors import ValidationFailed
from siyu.lifecycle import service as lifecycle
from siyu.lifecycle.service import Stage
from siyu.metrics.service.filters import MetricFilter, customer_condition
from siyu.orders import service as orders
from siyu.reach import service as reach


@dataclass(frozen=True)
class Reactivation:
    days: int
    reached_dormant: int  # customers reached in the window while dormant
    reactivated: int  # of them, with a purchase within `days` of the first such reach
    rate: float | None  # reactivated / reached_dormant
    mean_days_to_purchase: float | None


def dormant_reactivation(
    session: Session,
    *,
    actor: Actor,
    start: datetime,
    end: datetime,
    days: int = 30,
    filters: MetricFilter | None = None,
) -> Reactivation:
    """Of the customers a message reached (sent or delivered) in [start, end) while their lifecycle
    stage was dormant, the share with a purchase at or after their first such reach and less than
    `days` days later."""
    actor.require(Permission.READ)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed("give the window's start and end with a time zone", where="start/end")
    if end <= start:
        raise ValidationFailed(f"the window ends ({end}) before it starts ({start})", where="end")
    if not 1 <= days <= 3650:
        raise ValidationFailed(f"a window of {days} days is out of range", where="days")
    workspace_id = actor.workspace_id
    reached = reach.reached_customers(workspace_id=workspace_id).subquery()
    spans = lifecycle.stage_spans(workspace_id=workspace_id).subquery()
    dormant = (
        select(reached.c.customer_id, func.min(reached.c.reached_at).label("reached_at"))
        .join(spans, spans.c.customer_id == reached.c.customer_id)
        .where(
            spans.c.stage == Stage.DORMANT.value,
            spans.c.from_at <= reached.c.reached_at,
            spans.c.until_at.is_(None) | (spans.c.until_at > reached.c.reached_at),
            reached.c.reached_at >= start,
            reached.c.reached_at < end,
            *customer_condition(reached.c.customer_id, workspace_id=workspace_id, filters=filters),
        )
        .group_by(reached.c.customer_id)
        .subquery()
    )
    bought = orders.purchases(workspace_id=workspace_id).subquery()
    following = (
        select(
            dormant.c.customer_id,
            dormant.c.reached_at,
            func.min(bought.c.placed_at).label("bought_at"),
        )
        .outerjoin(
            bought,
            (bought.c.customer_id == dormant.c.customer_id) & (bought.c.placed_at >= dormant.c.reached_at),
        )
        .group_by(dormant.c.customer_id, dormant.c.reached_at)
        .subquery()
    )
    gap = days_between(session, following.c.bought_at, following.c.reached_at)
    within = following.c.bought_at.is_not(None) & (gap < days)
    total, woken, mean_days = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((within, 1), else_=0)), 0),
            func.avg(case((within, gap), else_=None)),
        )
    ).one()
    total, woken = int(total), int(woken)
    return Reactivation(
        days=days,
        reached_dormant=total,
        reactivated=woken,
        rate=woken / total if total else None,
        mean_days_to_purchase=float(mean_days) if mean_days is not None else None,
    )
