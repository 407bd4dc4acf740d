"""Agents (小B / 分销) and their commission ledger: an agent's invitees' paid orders accrue a commission
by the agent's rule (a percent of the net, optionally per category), a refund reverses what the refunded
part earned. The ledger is append-only; each entry's source key applies it once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.orders import service as orders
from siyu.referrals.models import COUNTED_STATUSES, CommissionEntry, ReferralAgent, ReferralInvite
from siyu.referrals.schemas import AgentIn, AgentOut

EARNING_STATUSES = ("paid", "partially_refunded")
BP = 10_000  # basis points in a whole


def _bp(percent: float, *, where: str) -> int:
    bp = round(percent * 100)
    if not 0 <= bp <= BP:
        raise ValidationFailed(f"{percent} is not a percent from 0 to 100", where=where)
    return bp


def make_agent(session: Session, *, actor: Actor, spec: AgentIn) -> ReferralAgent:
    """Make a customer an agent (or change an agent's rates); refuses customers the actor cannot see."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=spec.customer_id)
    rate = _bp(spec.rate_percent, where="rate_percent")
    per_category = {}
    for category, percent in spec.category_rates_percent.items():
        name = category.strip()
        if not name or len(name) > 100:
            raise ValidationFailed(
                "a category needs a name of 1 to 100 characters", where="category_rates_percent"
            )
        per_category[name] = _bp(percent, where=f"category_rates_percent.{name[:40]}")
    agent = session.scalar(
        select(ReferralAgent).where(
            ReferralAgent.workspace_id == actor.workspace_id, ReferralAgent.customer_id == spec.customer_id
        )
    )
    if agent is None:
        agent = ReferralAgent(
            workspace_id=actor.workspace_id,
            customer_id=spec.customer_id,
            created_by_user_id=actor.user_id,
            created_at=utcnow(),
            is_active=True,
        )
        session.add(agent)
    agent.rate_bp = rate
    agent.category_rates_bp = per_category
    agent.is_active = True
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="referral.agent_set",
        target_type="referral_agent",
        target_id=agent.id,
        detail={"customer_id": spec.customer_id, "rate_bp": rate, "category_rates_bp": per_category},
    )
    return agent


def get_agent(session: Session, *, workspace_id: int, agent_id: int) -> ReferralAgent:
    agent = session.get(ReferralAgent, agent_id)
    if agent is None or agent.workspace_id != workspace_id:
        raise NotFound(f"agent {agent_id} does not exist in this workspace", where="agent_id")
    return agent


def agents_of_invitees(
    session: Session, *, workspace_id: int, customer_ids: list[int]
) -> dict[int, ReferralAgent]:
    """For each of these customers invited (and counted) by an active agent: that agent (the first
    invite's, if several agents invited them)."""
    found: dict[int, ReferralAgent] = {}
    for start in range(0, len(customer_ids), 1000):
        rows = session.execute(
            select(ReferralInvite.invitee_customer_id, ReferralAgent)
            .join(
                ReferralAgent,
                (ReferralAgent.customer_id == ReferralInvite.inviter_customer_id)
                & (ReferralAgent.workspace_id == ReferralInvite.workspace_id),
            )
            .where(
                ReferralInvite.workspace_id == workspace_id,
                ReferralInvite.invitee_customer_id.in_(customer_ids[start : start + 1000]),
                ReferralInvite.status.in_([s.value for s in COUNTED_STATUSES]),
                ReferralAgent.is_active.is_(True),
            )
            .order_by(ReferralInvite.invited_at, ReferralInvite.id)
        )
        for invitee_id, agent in rows:
            found.setdefault(invitee_id, agent)
    return found


def commission_on(agent: ReferralAgent, *, paid_cents: int, by_category: dict[str, int]) -> int:
    """The commission of a paid order: its lines' amounts at their category's rate (or the agent's),
    scaled to what was paid; an order without lines earns the agent's rate on what was paid."""
    lines_total = sum(by_category.values())
    if lines_total <= 0 or not agent.category_rates_bp:
        return paid_cents * agent.rate_bp // BP
    weighted = sum(
        amount * agent.category_rates_bp.get(category, agent.rate_bp)
        for category, amount in by_category.items()
    )
    return weighted * paid_cents // (lines_total * BP)


def _entry(session: Session, *, workspace_id: int, source_key: str) -> CommissionEntry | None:
    return session.scalar(
        select(CommissionEntry).where(
            CommissionEntry.workspace_id == workspace_id, CommissionEntry.source_key == source_key
        )
    )


def record_order(
    session: Session,
    *,
    agent: ReferralAgent,
    invitee_customer_id: int,
    order_id: int | None,
    order_ref: str,
    status: str,
    paid_cents: int,
    refunded_cents: int,
    at: datetime | None = None,
) -> list[CommissionEntry]:
    """Bring the agent's commission on one order in line with its state: a paid order accrues once; a
    larger refund (or a cancellation) reverses the commission of the refunded part. Idempotent."""
    now = at or utcnow()
    written: list[CommissionEntry] = []
    ws = agent.workspace_id
    accrued = _entry(session, workspace_id=ws, source_key=f"order:{order_ref}")
    if accrued is None and status in EARNING_STATUSES:
        by_category = (
            orders.line_amounts_by_category(session, workspace_id=ws, order_id=order_id)
            if order_id is not None and agent.category_rates_bp
            else {}
        )
        amount = commission_on(agent, paid_cents=paid_cents, by_category=by_category)
        accrued = CommissionEntry(
            workspace_id=ws,
            agent_id=agent.id,
            invitee_customer_id=invitee_customer_id,
            order_ref=order_ref[:100],
            kind="accrue",
            basis_cents=paid_cents,
            amount_cents=amount,
            source_key=f"order:{order_ref}"[:160],
            created_at=now,
        )
        session.add(accrued)
        session.flush()
        written.append(accrued)
    if accrued is None or accrued.amount_cents <= 0:
        return written
    net = 0 if status in ("refunded", "cancelled") else max(0, paid_cents - refunded_cents)
    keep = accrued.amount_cents * net // accrued.basis_cents if accrued.basis_cents else 0
    standing = int(
        session.scalar(
            select(func.coalesce(func.sum(CommissionEntry.amount_cents), 0)).where(
                CommissionEntry.workspace_id == ws,
                CommissionEntry.agent_id == accrued.agent_id,
                CommissionEntry.order_ref == accrued.order_ref,
            )
        )
        or 0
    )
    if standing > keep:
        key = f"refund:{order_ref}@{refunded_cents}:{status}"[:160]
        if _entry(session, workspace_id=ws, source_key=key) is None:
            reversal = CommissionEntry(
                workspace_id=ws,
                agent_id=accrued.agent_id,
                invitee_customer_id=invitee_customer_id,
                order_ref=accrued.order_ref,
                kind="reverse",
                basis_cents=paid_cents - net,
                amount_cents=keep - standing,
                source_key=key,
                created_at=now,
            )
            session.add(reversal)
            session.flush()
            written.append(reversal)
    return written


def ledger_of(
    session: Session, *, workspace_id: int, agent_id: int, limit: int = 500
) -> list[CommissionEntry]:
    get_agent(session, workspace_id=workspace_id, agent_id=agent_id)
    return list(
        session.scalars(
            select(CommissionEntry)
            .where(CommissionEntry.workspace_id == workspace_id, CommissionEntry.agent_id == agent_id)
            .order_by(CommissionEntry.id.desc())
            .limit(max(1, min(limit, 2000)))
        )
    )


def agent_report(session: Session, *, actor: Actor) -> list[AgentOut]:
    """Per agent the actor may see: their rates, counted invitees, commission accrued, reversed and
    standing — in SQL."""
    actor.require(Permission.READ)
    workspace_id = actor.workspace_id
    totals = (
        select(
            CommissionEntry.agent_id.label("agent_id"),
            func.sum(case((CommissionEntry.amount_cents > 0, CommissionEntry.amount_cents), else_=0)).label(
                "accrued"
            ),
            func.sum(case((CommissionEntry.amount_cents < 0, -CommissionEntry.amount_cents), else_=0)).label(
                "reversed"
            ),
        )
        .where(CommissionEntry.workspace_id == workspace_id)
        .group_by(CommissionEntry.agent_id)
        .subquery()
    )
    invitees = (
        select(
            ReferralInvite.inviter_customer_id.label("customer_id"),
            func.count(func.distinct(ReferralInvite.invitee_customer_id)).label("invitees"),
        )
        .where(
            ReferralInvite.workspace_id == workspace_id,
            ReferralInvite.status.in_([s.value for s in COUNTED_STATUSES]),
        )
        .group_by(ReferralInvite.inviter_customer_id)
        .subquery()
    )
    rows = session.execute(
        select(
            ReferralAgent,
            func.coalesce(invitees.c.invitees, 0),
            func.coalesce(totals.c.accrued, 0),
            func.coalesce(totals.c.reversed, 0),
        )
        .outerjoin(totals, totals.c.agent_id == ReferralAgent.id)
        .outerjoin(invitees, invitees.c.customer_id == ReferralAgent.customer_id)
        .where(ReferralAgent.workspace_id == workspace_id)
        .order_by(ReferralAgent.id)
    )
    found = rows.all()
    labels = {
        c.id: c.name or c.phone or f"#{c.id}"
        for c in customers.customer_summaries(
            session, actor=actor, customer_ids=[a.customer_id for a, *_ in found]
        )
    }
    return [
        AgentOut(
            id=agent.id,
            customer_id=agent.customer_id,
            name=labels[agent.customer_id],
            rate_bp=agent.rate_bp,
            category_rates_bp=dict(agent.category_rates_bp or {}),
            is_active=agent.is_active,
            invitees=int(count),
            accrued_cents=int(accrued),
            reversed_cents=int(reversed_),
            balance_cents=int(accrued) - int(reversed_),
        )
        for agent, count, accrued, reversed_ in found
        if agent.customer_id in labels
    ]
