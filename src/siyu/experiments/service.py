"""Experiments: create one with weighted variants and a holdout, start and stop it, assign customers
(stable hash, exposure recorded once), and analyse it against its goal.

Broadcasts and journeys call `assign` for each customer they are about to reach and send the variant's
content; the analysis reads the exposures and the customers' purchases (or goal events) after them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.db import days_between
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.events import service as events
from siyu.experiments.models import Experiment, ExperimentStatus, ExperimentVariant, Exposure
from siyu.experiments.statistics import (
    Comparison,
    adjust_p_values,
    assign_variant,
    chance_to_beat,
    sample_ratio_mismatch,
    two_proportion_test,
    welch_test,
)
from siyu.orders import service as orders

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
HOLDOUT = "holdout"
_CHUNK = 1000


def _get(session: Session, *, workspace_id: int, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None or experiment.workspace_id != workspace_id:
        raise NotFound(f"no experiment {experiment_id} in this workspace", where="experiment_id")
    return experiment


def _variants(session: Session, experiment: Experiment) -> list[ExperimentVariant]:
    return list(
        session.scalars(
            select(ExperimentVariant)
            .where(ExperimentVariant.experiment_id == experiment.id)
            .order_by(ExperimentVariant.position)
        )
    )


def create_experiment(
    session: Session,
    *,
    actor: Actor,
    key: str,
    name: str,
    variants: dict[str, float],
    holdout_share: float = 0.0,
    goal_event: str | None = None,
    goal_window_days: int = 14,
) -> Experiment:
    """A draft experiment; the first variant is the control the others are compared with."""
    actor.require(Permission.WRITE)
    key = key.strip()
    if not _KEY.match(key):
        raise ValidationFailed(
            f"experiment key {key!r} is not a short code",
            where="key",
            hint="lower-case letters, digits, . _ -",
        )
    # one variant is enough when a holdout is what it is measured against (a broadcast vs no message)
    if len(variants) < (1 if holdout_share > 0 else 2) or any(
        not n.strip() or n == HOLDOUT for n in variants
    ):
        raise ValidationFailed(
            "an experiment needs at least two named variants, or one and a holdout",
            where="variants",
            hint=f'"{HOLDOUT}" is reserved',
        )
    if any(not math.isfinite(w) or w <= 0 for w in variants.values()):
        raise ValidationFailed("variant weights must be positive", where="variants")
    if not 0 <= holdout_share < 1:
        raise ValidationFailed(f"holdout share {holdout_share} is not in [0, 1)", where="holdout_share")
    if not 1 <= goal_window_days <= 365:
        raise ValidationFailed(
            f"a goal window of {goal_window_days} days is out of range", where="goal_window_days"
        )
    taken = session.scalar(
        select(Experiment.id).where(Experiment.workspace_id == actor.workspace_id, Experiment.key == key)
    )
    if taken is not None:
        raise Conflict(
            f"an experiment with key {key!r} exists already",
            where="key",
            hint="keys seed assignment: pick another",
        )
    experiment = Experiment(
        workspace_id=actor.workspace_id,
        key=key,
        name=name.strip() or key,
        status=ExperimentStatus.DRAFT,
        holdout_share=holdout_share,
        goal_event=(goal_event or "").strip() or None,
        goal_window_days=goal_window_days,
        created_at=utcnow(),
    )
    session.add(experiment)
    session.flush()
    for position, (variant, weight) in enumerate(variants.items()):
        session.add(
            ExperimentVariant(
                workspace_id=actor.workspace_id,
                experiment_id=experiment.id,
                name=variant.strip(),
                weight=float(weight),
                position=position,
            )
        )
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="experiment.create",
        target_type="experiment",
        target_id=experiment.id,
        detail={"key": key, "variants": variants, "holdout_share": holdout_share},
    )
    domain_events.record(
        session,
        workspace_id=actor.workspace_id,
        type=DomainEventType.EXPERIMENT_CREATED,
        customer_id=None,
        payload={"experiment_id": experiment.id, "key": key},
    )
    return experiment


def _set_status(
    session: Session, *, actor: Actor, experiment_id: int, status: ExperimentStatus
) -> Experiment:
    actor.require(Permission.WRITE)
    experiment = _get(session, workspace_id=actor.workspace_id, experiment_id=experiment_id)
    allowed = {
        ExperimentStatus.RUNNING: ExperimentStatus.DRAFT,
        ExperimentStatus.STOPPED: ExperimentStatus.RUNNING,
    }
    if experiment.status != allowed[status]:
        raise Conflict(
            f"experiment {experiment.key!r} is {experiment.status}; it cannot become {status}",
            where="status",
            hint="draft → running → stopped",
        )
    now = utcnow()
    experiment.status = status
    if status is ExperimentStatus.RUNNING:
        experiment.started_at = now
    else:
        experiment.stopped_at = now
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action=f"experiment.{'start' if status is ExperimentStatus.RUNNING else 'stop'}",
        target_type="experiment",
        target_id=experiment.id,
    )
    domain_events.record(
        session,
        workspace_id=actor.workspace_id,
        type=DomainEventType.EXPERIMENT_STARTED
        if status is ExperimentStatus.RUNNING
        else DomainEventType.EXPERIMENT_STOPPED,
        customer_id=None,
        payload={"experiment_id": experiment.id},
    )
    return experiment


def start_experiment(session: Session, *, actor: Actor, experiment_id: int) -> Experiment:
    return _set_status(session, actor=actor, experiment_id=experiment_id, status=ExperimentStatus.RUNNING)


def stop_experiment(session: Session, *, actor: Actor, experiment_id: int) -> Experiment:
    return _set_status(session, actor=actor, experiment_id=experiment_id, status=ExperimentStatus.STOPPED)


def assign(
    session: Session, *, workspace_id: int, experiment_id: int, customer_id: int, at: datetime | None = None
) -> str | None:
    """The arm of a running experiment this customer is in (None: the holdout), recording their
    exposure the first time; asking again returns the same arm and records nothing. For system callers
    (broadcasts, journeys), which check the customer belongs to the workspace."""
    experiment = _get(session, workspace_id=workspace_id, experiment_id=experiment_id)
    if experiment.status != ExperimentStatus.RUNNING:
        raise Conflict(f"experiment {experiment.key!r} is {experiment.status}, not running", where="status")
    existing = session.execute(
        select(Exposure.id, Exposure.variant).where(
            Exposure.experiment_id == experiment.id, Exposure.customer_id == customer_id
        )
    ).first()
    if existing is not None:
        return existing.variant
    weights = {v.name: v.weight for v in _variants(session, experiment)}
    variant = assign_variant(experiment.key, customer_id, weights, holdout=experiment.holdout_share)
    exposed_at = at or utcnow()
    try:
        with session.begin_nested():  # a concurrent first exposure of the same customer wins the race
            session.add(
                Exposure(
                    workspace_id=workspace_id,
                    experiment_id=experiment.id,
                    customer_id=customer_id,
                    variant=variant,
                    exposed_at=exposed_at,
                )
            )
    except IntegrityError:
        return session.scalar(
            select(Exposure.variant).where(
                Exposure.experiment_id == experiment.id, Exposure.customer_id == customer_id
            )
        )
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type=DomainEventType.EXPERIMENT_EXPOSED,
        customer_id=customer_id,
        payload={"experiment_id": experiment.id, "variant": variant},
        occurred_at=exposed_at,
    )
    return variant


def assign_many(
    session: Session,
    *,
    workspace_id: int,
    experiment_id: int,
    customer_ids: Sequence[int],
    at: datetime | None = None,
) -> dict[int, str | None]:
    """`assign` for many customers at once (a broadcast's audience), set-based: each customer's arm
    (None: the holdout), the exposures of those seen for the first time recorded with their events.
    Customers exposed before keep their arm."""
    experiment = _get(session, workspace_id=workspace_id, experiment_id=experiment_id)
    if experiment.status != ExperimentStatus.RUNNING:
        raise Conflict(f"experiment {experiment.key!r} is {experiment.status}, not running", where="status")
    weights = {v.name: v.weight for v in _variants(session, experiment)}
    exposed_at = at or utcnow()
    arms: dict[int, str | None] = {}
    ids = list(dict.fromkeys(customer_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        known: dict[int, str | None] = {
            customer_id: variant
            for customer_id, variant in session.execute(
                select(Exposure.customer_id, Exposure.variant).where(
                    Exposure.experiment_id == experiment.id, Exposure.customer_id.in_(chunk)
                )
            )
        }
        arms.update(known)
        fresh = [c for c in chunk if c not in known]
        for customer_id in fresh:
            arms[customer_id] = assign_variant(
                experiment.key, customer_id, weights, holdout=experiment.holdout_share
            )
        if not fresh:
            continue
        # the caller's transaction decides for these customers: a concurrent first exposure of one of
        # them would fail the unique constraint, and the caller's retry then finds it recorded
        session.execute(
            insert(Exposure),
            [
                {
                    "workspace_id": workspace_id,
                    "experiment_id": experiment.id,
                    "customer_id": c,
                    "variant": arms[c],
                    "exposed_at": exposed_at,
                }
                for c in fresh
            ],
        )
        domain_events.record_many(
            session,
            (
                {
                    "workspace_id": workspace_id,
                    "type": DomainEventType.EXPERIMENT_EXPOSED,
                    "customer_id": c,
                    "payload": {"experiment_id": experiment.id, "variant": arms[c]},
                    "occurred_at": exposed_at,
                }
                for c in fresh
            ),
        )
    return arms


def assign_for(session: Session, *, actor: Actor, experiment_id: int, customer_id: int) -> str | None:
    """`assign` for an API caller: the customer must be one the actor may see."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return assign(
        session, workspace_id=actor.workspace_id, experiment_id=experiment_id, customer_id=customer_id
    )


# --- analysis ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    name: str  # a variant, or "holdout"
    planned_share: float
    exposed: int
    converted: int
    conversion_rate: float | None
    revenue_per_customer_cents: float | None
    revenue_variance: float | None


@dataclass(frozen=True)
class ArmComparison:
    arm: str
    against: str
    conversion: Comparison
    conversion_p_adjusted: float  # Holm-corrected across the comparisons
    chance_to_beat: float
    revenue: Comparison | None


@dataclass(frozen=True)
class ExperimentResults:
    experiment_id: int
    key: str
    status: str
    goal: str
    goal_window_days: int
    arms: list[Arm]
    comparisons: list[ArmComparison]
    sample_ratio_p_value: float | None
    sample_ratio_mismatch: bool


def analyse(session: Session, *, actor: Actor, experiment_id: int) -> ExperimentResults:
    """Per arm, of the exposed customers: how many reached the goal (a purchase, or the goal event)
    within the goal window after their exposure, and their net revenue in that window; every variant
    against the control (the first variant), with the holdout compared too, Holm-corrected; and the
    sample-ratio check of the exposures against the planned shares."""
    actor.require(Permission.READ)
    experiment = _get(session, workspace_id=actor.workspace_id, experiment_id=experiment_id)
    variants = _variants(session, experiment)
    exposure = (
        select(Exposure.customer_id, Exposure.variant, Exposure.exposed_at)
        .where(Exposure.experiment_id == experiment.id)
        .subquery()
    )
    window = experiment.goal_window_days

    def after_exposure(column: Any) -> Any:
        age = days_between(session, column, exposure.c.exposed_at)
        return (column >= exposure.c.exposed_at) & (age < window)

    bought = orders.purchases(workspace_id=actor.workspace_id).subquery()
    revenue = (
        select(
            exposure.c.customer_id,
            func.coalesce(func.sum(bought.c.net_cents), 0).label("cents"),
            func.count(bought.c.order_id).label("purchases"),
        )
        .select_from(exposure)
        .outerjoin(
            bought, (bought.c.customer_id == exposure.c.customer_id) & after_exposure(bought.c.placed_at)
        )  # type: ignore[arg-type]
        .group_by(exposure.c.customer_id)
        .subquery()
    )
    if experiment.goal_event:
        goal_hits = events.occurrences(workspace_id=actor.workspace_id, type=experiment.goal_event).subquery()
        reached = (
            select(exposure.c.customer_id)
            .join(goal_hits, goal_hits.c.customer_id == exposure.c.customer_id)
            .where(after_exposure(goal_hits.c.occurred_at))  # type: ignore[arg-type]
            .distinct()
            .subquery()
        )
        converted = case((exposure.c.customer_id.in_(select(reached.c.customer_id)), 1), else_=0)
    else:
        converted = case((revenue.c.purchases > 0, 1), else_=0)
    rows = session.execute(
        select(
            exposure.c.variant,
            func.count(),
            func.sum(converted),
            func.avg(revenue.c.cents),
            func.avg(revenue.c.cents * revenue.c.cents),
        )
        .join(revenue, revenue.c.customer_id == exposure.c.customer_id)
        .group_by(exposure.c.variant)
    ).all()
    by_arm = {variant: (int(n), int(c or 0), float(m or 0), float(m2 or 0)) for variant, n, c, m, m2 in rows}
    total_weight = sum(v.weight for v in variants)
    planned = {v.name: (1 - experiment.holdout_share) * v.weight / total_weight for v in variants}
    if experiment.holdout_share > 0:
        planned[HOLDOUT] = experiment.holdout_share
    arms = []
    for name, share in planned.items():
        n, c, mean, mean_sq = by_arm.get(None if name == HOLDOUT else name, (0, 0, 0.0, 0.0))
        variance = (mean_sq - mean * mean) * n / (n - 1) if n > 1 else None
        arms.append(
            Arm(
                name=name,
                planned_share=share,
                exposed=n,
                converted=c,
                conversion_rate=c / n if n else None,
                revenue_per_customer_cents=mean if n else None,
                revenue_variance=max(variance, 0.0) if variance is not None else None,
            )
        )
    control = arms[0]
    comparisons: list[ArmComparison] = []
    for arm in arms[1:]:
        if not arm.exposed or not control.exposed:
            continue
        revenue_test = None
        if (
            arm.exposed > 1
            and control.exposed > 1
            and ((arm.revenue_variance or 0) + (control.revenue_variance or 0)) > 0
        ):
            revenue_test = welch_test(
                control.revenue_per_customer_cents or 0.0,
                control.revenue_variance or 0.0,
                control.exposed,
                arm.revenue_per_customer_cents or 0.0,
                arm.revenue_variance or 0.0,
                arm.exposed,
            )
        comparisons.append(
            ArmComparison(
                arm=arm.name,
                against=control.name,
                conversion=two_proportion_test(
                    control.converted, control.exposed, arm.converted, arm.exposed
                ),
                conversion_p_adjusted=1.0,
                chance_to_beat=chance_to_beat(control.converted, control.exposed, arm.converted, arm.exposed),
                revenue=revenue_test,
            )
        )
    adjusted = adjust_p_values([c.conversion.p_value for c in comparisons], method="holm")
    comparisons = [
        ArmComparison(c.arm, c.against, c.conversion, p, c.chance_to_beat, c.revenue)
        for c, p in zip(comparisons, adjusted, strict=True)
    ]
    srm = None
    if sum(a.exposed for a in arms) > 0:
        srm = sample_ratio_mismatch([a.exposed for a in arms], [a.planned_share for a in arms])
    return ExperimentResults(
        experiment_id=experiment.id,
        key=experiment.key,
        status=experiment.status,
        goal=f"event:{experiment.goal_event}" if experiment.goal_event else "purchase",
        goal_window_days=window,
        arms=arms,
        comparisons=comparisons,
        sample_ratio_p_value=srm.p_value if srm else None,
        sample_ratio_mismatch=bool(srm and srm.mismatch),
    )


def get_experiment(
    session: Session, *, actor: Actor, experiment_id: int
) -> tuple[Experiment, list[ExperimentVariant]]:
    actor.require(Permission.READ)
    experiment = _get(session, workspace_id=actor.workspace_id, experiment_id=experiment_id)
    return experiment, _variants(session, experiment)


def list_experiments(session: Session, *, actor: Actor) -> list[Experiment]:
    """The workspace's experiments, newest first."""
    actor.require(Permission.READ)
    return list(
        session.scalars(
            select(Experiment)
            .where(Experiment.workspace_id == actor.workspace_id)
            .order_by(Experiment.created_at.desc(), Experiment.id.desc())
        )
    )
