"""Placing every customer of a workspace in a lifecycle stage as of `now`, from their rollups, and
keeping the history: each change of stage is a transition row with its time and cause, and a
`lifecycle.changed` domain event, written with the new stages in one transaction.

Stages, in the order they are decided (thresholds per workspace, `LifecycleSettings`):
- lead: never bought;
- churned: no purchase for `churn_days`, or unreachable (a buyer who unsubscribed everywhere, or deleted
  the staff on WeCom and is no one's friend there any more);
- dormant (沉睡): no purchase for `dormant_factor` × the customer's own typical gap between purchases
  (first to last purchase over the number of gaps), or `dormant_days` for a one-time buyer;
- reactivated: bought again after being dormant or churned — until their next purchase;
- loyal: at least `loyal_orders` purchases; active: two or more; new: one.
Running it daily is the time sweep: stages move as time passes, without any new order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, delete, func, insert, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import as_utc, utcnow
from siyu.customers import service as customers
from siyu.customers.service import facts as customer_facts
from siyu.lifecycle.models import CustomerStage, LifecycleSettings, Stage, StageTransition
from siyu.wecom import service as wecom

MIN_DORMANT_DAYS = 7  # a customer who bought twice in a day does not lapse the next week
CAUSES = {
    Stage.LEAD: "in_pool",
    Stage.NEW: "first_purchase",
    Stage.ACTIVE: "repeat_purchase",
    Stage.LOYAL: "loyal_threshold",
    Stage.DORMANT: "lapsed",
    Stage.CHURNED: "no_purchase_for_churn_days",
    Stage.REACTIVATED: "bought_again",
}
UNREACHABLE = "unreachable"  # the cause of a churn by unreachability


@dataclass(frozen=True)
class Thresholds:
    loyal_orders: int = 4
    dormant_factor: float = 3.0
    dormant_days: int = 60
    churn_days: int = 180


@dataclass(frozen=True)
class SweepResult:
    customers: int
    transitions: int
    by_stage: dict[str, int]


@dataclass(frozen=True)
class Flow:
    from_stage: str | None
    to_stage: str
    customers: int


def settings_of(session: Session, *, workspace_id: int) -> Thresholds:
    row = session.get(LifecycleSettings, workspace_id)
    if row is None:
        return Thresholds()
    return Thresholds(row.loyal_orders, row.dormant_factor, row.dormant_days, row.churn_days)


def update_settings(session: Session, *, actor: Actor, thresholds: Thresholds) -> Thresholds:
    """Set the workspace's thresholds (audited); the next sweep applies them."""
    actor.require(Permission.MANAGE)
    t = thresholds
    problems = [
        (t.loyal_orders < 2, "loyal_orders", "at least 2 purchases"),
        (t.dormant_factor <= 1, "dormant_factor", "more than 1 (× the customer's own gap)"),
        (t.dormant_days < MIN_DORMANT_DAYS, "dormant_days", f"at least {MIN_DORMANT_DAYS} days"),
        (t.churn_days <= t.dormant_days, "churn_days", "more than dormant_days"),
    ]
    for bad, where, hint in problems:
        if bad:
            raise ValidationFailed(f"{where} {getattr(t, where)} is out of range", where=where, hint=hint)
    row = session.get(LifecycleSettings, actor.workspace_id)
    if row is None:
        row = LifecycleSettings(workspace_id=actor.workspace_id)
        session.add(row)
    row.loyal_orders, row.dormant_factor = t.loyal_orders, t.dormant_factor
    row.dormant_days, row.churn_days = t.dormant_days, t.churn_days
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="lifecycle.settings",
        target_type="workspace",
        target_id=actor.workspace_id,
        detail=t.__dict__,
    )
    return t


def decide(
    *,
    order_count: int,
    first: datetime | None,
    last: datetime | None,
    now: datetime,
    previous: tuple[str, datetime, datetime | None] | None,
    t: Thresholds,
    unreachable_at: datetime | None = None,
) -> tuple[Stage, datetime]:
    """The stage of one customer at `now` and when they entered it (the purchase or the moment the
    threshold passed), given their previous (stage, since, reactivated_at). A buyer who became
    unreachable at `unreachable_at` is churned from then on, whatever they bought."""
    if order_count == 0 or first is None or last is None:
        return Stage.LEAD, previous[1] if previous and previous[0] == Stage.LEAD else now
    if unreachable_at is not None:
        if previous is not None and previous[0] == Stage.CHURNED:
            return Stage.CHURNED, previous[1]
        return Stage.CHURNED, min(max(unreachable_at, last), now)
    if order_count >= 2:
        gap_days = (last - first).total_seconds() / 86400 / (order_count - 1)
        dormant_after = max(t.dormant_factor * gap_days, MIN_DORMANT_DAYS)
    else:
        dormant_after = t.dormant_days
    dormant_after = min(dormant_after, t.churn_days)
    idle_days = (now - last).total_seconds() / 86400
    if idle_days >= t.churn_days:
        return Stage.CHURNED, last + timedelta(days=t.churn_days)
    if idle_days >= dormant_after:
        return Stage.DORMANT, last + timedelta(days=dormant_after)
    if previous is not None:
        stage, since, reactivated_at = previous
        if stage in (Stage.DORMANT, Stage.CHURNED) and last > since:
            return Stage.REACTIVATED, last
        if stage == Stage.REACTIVATED and reactivated_at is not None and last <= reactivated_at:
            return Stage.REACTIVATED, since
    if order_count >= t.loyal_orders:
        return Stage.LOYAL, last
    return (Stage.ACTIVE if order_count >= 2 else Stage.NEW), last


def sweep(session: Session, *, actor: Actor, now: datetime | None = None) -> SweepResult:
    """Decide every live customer's stage at `now` (default: now); record what changed."""
    actor.require(Permission.WRITE)
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValidationFailed("give `now` with a time zone", where="now")
    workspace_id = actor.workspace_id
    t = settings_of(session, workspace_id=workspace_id)
    previous = {
        row.customer_id: (
            row.stage,
            as_utc(row.since),
            as_utc(row.reactivated_at) if row.reactivated_at else None,
        )
        for row in session.execute(
            select(
                CustomerStage.customer_id,
                CustomerStage.stage,
                CustomerStage.since,
                CustomerStage.reactivated_at,
            ).where(CustomerStage.workspace_id == workspace_id)
        )
    }
    rows = session.execute(customer_facts.purchase_rollups(workspace_id=workspace_id)).all()
    unreachable = unreachable_since(session, workspace_id=workspace_id)
    changed: list[dict[str, Any]] = []
    transitions: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    by_stage: dict[str, int] = {stage.value: 0 for stage in Stage}
    for row in rows:
        before = previous.get(row.customer_id)
        first = as_utc(row.first_order_at) if row.first_order_at else None
        last = as_utc(row.last_order_at) if row.last_order_at else None
        unreachable_at = unreachable.get(row.customer_id)
        stage, since = decide(
            order_count=int(row.order_count),
            first=first,
            last=last,
            now=now,
            previous=before,
            t=t,
            unreachable_at=unreachable_at,
        )
        by_stage[stage.value] += 1
        if before is not None and before[0] == stage and before[1] == since:
            continue
        reactivated_at = last if stage == Stage.REACTIVATED else None
        changed.append(
            {
                "customer_id": row.customer_id,
                "workspace_id": workspace_id,
                "stage": stage.value,
                "since": since,
                "reactivated_at": reactivated_at,
            }
        )
        if before is None or before[0] != stage:
            from_stage = before[0] if before else None
            cause = UNREACHABLE if stage == Stage.CHURNED and unreachable_at is not None else CAUSES[stage]
            transitions.append(
                {
                    "workspace_id": workspace_id,
                    "customer_id": row.customer_id,
                    "from_stage": from_stage,
                    "to_stage": stage.value,
                    "at": since,
                    "cause": cause,
                }
            )
            events.append(
                {
                    "workspace_id": workspace_id,
                    "type": "lifecycle.changed",
                    "customer_id": row.customer_id,
                    "payload": {"from": from_stage, "to": stage.value, "cause": cause},
                    "occurred_at": since,
                }
            )
    ids = [c["customer_id"] for c in changed]
    for start in range(0, len(ids), 5000):
        session.execute(delete(CustomerStage).where(CustomerStage.customer_id.in_(ids[start : start + 5000])))
    for start in range(0, len(changed), 5000):
        session.execute(insert(CustomerStage), changed[start : start + 5000])
    for start in range(0, len(transitions), 5000):
        session.execute(insert(StageTransition), transitions[start : start + 5000])
    domain_events.record_many(session, events)
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor.user_id,
        action="lifecycle.sweep",
        target_type="workspace",
        target_id=workspace_id,
        detail={"customers": len(rows), "transitions": len(transitions), "now": now.isoformat()},
    )
    return SweepResult(customers=len(rows), transitions=len(transitions), by_stage=by_stage)


def unreachable_since(session: Session, *, workspace_id: int) -> dict[int, datetime]:
    """Customers the brand can no longer reach, with since when: unsubscribed (marketing) on every
    channel they decided on and no one's WeCom friend, or deleted the staff on WeCom with no friend
    left there. The earlier of the two when both hold."""
    unsubscribed = {
        customer_id: as_utc(at)
        for customer_id, at in session.execute(customers.unsubscribed_everywhere(workspace_id))
    }
    # a WeCom friend can still be talked to, whatever the consent to marketing messages says
    for friend in wecom.is_friend(session, workspace_id=workspace_id, customer_ids=unsubscribed):
        del unsubscribed[friend]
    found = unsubscribed
    for customer_id, at in session.execute(wecom.deleted_staff_everywhere(workspace_id=workspace_id)):
        when = as_utc(at)
        found[customer_id] = min(found.get(customer_id, when), when)
    return found


def flows(session: Session, *, actor: Actor, start: datetime, end: datetime) -> list[Flow]:
    """How many customers moved from each stage to each other in [start, end) (the lifecycle funnel)."""
    actor.require(Permission.READ)
    if end <= start:
        raise ValidationFailed("the range ends before it starts", where="end")
    rows = session.execute(
        select(
            StageTransition.from_stage,
            StageTransition.to_stage,
            func.count(func.distinct(StageTransition.customer_id)),
        )
        .where(
            StageTransition.workspace_id == actor.workspace_id,
            StageTransition.at >= start,
            StageTransition.at < end,
        )
        .group_by(StageTransition.from_stage, StageTransition.to_stage)
    ).all()
    return sorted(
        (Flow(from_stage=f, to_stage=to, customers=int(n)) for f, to, n in rows),
        key=lambda flow: (-flow.customers, flow.from_stage or "", flow.to_stage),
    )


def history(session: Session, *, workspace_id: int, customer_id: int) -> list[StageTransition]:
    """A customer's transitions, oldest first."""
    return list(
        session.scalars(
            select(StageTransition)
            .where(StageTransition.workspace_id == workspace_id, StageTransition.customer_id == customer_id)
            .order_by(StageTransition.at, StageTransition.id)
        )
    )


def stage_column(name: str, *, customer_id: Any) -> Any:
    """A correlated scalar subquery of the customer's current stage (NULL before the first sweep), for
    segment rules."""
    assert name == "stage"
    return select(CustomerStage.stage).where(CustomerStage.customer_id == customer_id).scalar_subquery()


def stage_counts(session: Session, *, actor: Actor) -> dict[str, int]:
    """Customers per stage as the last sweep left them (every stage listed, 0 where empty)."""
    actor.require(Permission.READ)
    found = {
        stage: count
        for stage, count in session.execute(
            select(CustomerStage.stage, func.count())
            .where(CustomerStage.workspace_id == actor.workspace_id)
            .group_by(CustomerStage.stage)
        )
    }
    return {stage.value: int(found.get(stage.value, 0)) for stage in Stage}


def stage_spans(*, workspace_id: int) -> Select[Any]:
    """Every stay of a customer in a stage, from the transition log: (`customer_id`, `stage`, `from_at`,
    `until_at` the next transition, NULL for the stage they are in), for the analytical domains."""
    until = (
        func.lead(StageTransition.at)
        .over(partition_by=StageTransition.customer_id, order_by=(StageTransition.at, StageTransition.id))
        .label("until_at")
    )
    return select(
        StageTransition.customer_id.label("customer_id"),
        StageTransition.to_stage.label("stage"),
        StageTransition.at.label("from_at"),
        until,
    ).where(StageTransition.workspace_id == workspace_id)


FUNNEL_STEPS = (Stage.LEAD, Stage.NEW, Stage.ACTIVE, Stage.LOYAL)


@dataclass(frozen=True)
class FunnelStep:
    stage: str
    customers: int  # live customers who reached this step (a purchase count at least the step's)


def funnel(session: Session, *, actor: Actor) -> list[FunnelStep]:
    """lead → new → active → loyal: how many live customers got at least that far, by their purchases
    (everyone is a lead; one purchase makes them new, two active, `loyal_orders` loyal), whatever
    stage they are in now (a loyal customer who went quiet still reached loyal)."""
    actor.require(Permission.READ)
    t = settings_of(session, workspace_id=actor.workspace_id)
    rollups = customer_facts.purchase_rollups(workspace_id=actor.workspace_id).subquery()
    reached = [
        func.count(),
        *(
            func.coalesce(func.sum(case((rollups.c.order_count >= n, 1), else_=0)), 0)
            for n in (1, 2, t.loyal_orders)
        ),
    ]
    row = session.execute(select(*reached).select_from(rollups)).one()
    return [
        FunnelStep(stage=stage.value, customers=int(n)) for stage, n in zip(FUNNEL_STEPS, row, strict=True)
    ]
