"""What a campaign brought, in SQL: progress per inviter (counted and qualified invites, the next tier),
the referral tree (inviter → invitees, with depth) and the KOC board (inviters ranked by invitees and
their invitees' net revenue)."""

from __future__ import annotations

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.customers import service as customers
from siyu.orders import service as orders
from siyu.referrals.models import COUNTED_STATUSES, InviteStatus, ReferralInvite, ReferralReward
from siyu.referrals.schemas import BoardRow, ProgressOut, TreeNode
from siyu.referrals.service.campaigns import get_campaign, tiers_of

MAX_DEPTH = 20
_COUNTED = [s.value for s in COUNTED_STATUSES]
_IN_TREE = [*_COUNTED, InviteStatus.HELD.value]


def names(session: Session, *, actor: Actor, customer_ids: list[int]) -> dict[int, str]:
    """A label per customer the actor may see: the name, else the (masked) phone, else #id."""
    return {
        s.id: s.name or s.phone or f"#{s.id}"
        for s in customers.customer_summaries(session, actor=actor, customer_ids=customer_ids)
    }


def progress(session: Session, *, actor: Actor, campaign_id: int) -> list[ProgressOut]:
    """Every inviter of the campaign with their invites by state, rewards and the distance to the next
    tier; most qualified first."""
    actor.require(Permission.READ)
    campaign = get_campaign(session, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    thresholds = [t.threshold for t in tiers_of(session, campaign_id=campaign.id)]
    rewards = (
        select(ReferralReward.inviter_customer_id.label("inviter"), func.count(ReferralReward.id).label("n"))
        .where(ReferralReward.campaign_id == campaign.id)
        .group_by(ReferralReward.inviter_customer_id)
        .subquery()
    )
    qualified = func.sum(case((ReferralInvite.status == InviteStatus.QUALIFIED, 1), else_=0))
    rows = session.execute(
        select(
            ReferralInvite.inviter_customer_id,
            func.count(ReferralInvite.id),
            func.sum(case((ReferralInvite.status.in_(_COUNTED), 1), else_=0)),
            qualified,
            func.sum(case((ReferralInvite.status == InviteStatus.HELD, 1), else_=0)),
            func.coalesce(func.max(rewards.c.n), 0),
        )
        .outerjoin(rewards, rewards.c.inviter == ReferralInvite.inviter_customer_id)
        .where(ReferralInvite.workspace_id == actor.workspace_id, ReferralInvite.campaign_id == campaign.id)
        .group_by(ReferralInvite.inviter_customer_id)
        .order_by(qualified.desc(), ReferralInvite.inviter_customer_id)
        .limit(1000)
    ).all()
    labels = names(session, actor=actor, customer_ids=[r[0] for r in rows])
    out: list[ProgressOut] = []
    for inviter, invites, counted, qualified_n, held, reward_n in rows:
        if inviter not in labels:
            continue  # staff see only the inviters they own
        ahead = [t for t in thresholds if t > int(qualified_n or 0)]
        out.append(
            ProgressOut(
                inviter_customer_id=inviter,
                inviter_name=labels[inviter],
                invites=int(invites),
                counted=int(counted or 0),
                qualified=int(qualified_n or 0),
                held=int(held or 0),
                rewards=int(reward_n or 0),
                next_threshold=ahead[0] if ahead else None,
                to_next=ahead[0] - int(qualified_n or 0) if ahead else None,
            )
        )
    return out


def tree(session: Session, *, actor: Actor, campaign_id: int) -> list[TreeNode]:
    """The campaign's referral tree in depth-first order: inviters who were not invited themselves at
    depth 0, their invitees at 1, the invitees' invitees at 2… (counted and held invites; a friend
    already in the pool or refused is no branch)."""
    actor.require(Permission.READ)
    campaign = get_campaign(session, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    edges = (
        select(ReferralInvite.inviter_customer_id, ReferralInvite.invitee_customer_id, ReferralInvite.status)
        .where(
            ReferralInvite.workspace_id == actor.workspace_id,
            ReferralInvite.campaign_id == campaign.id,
            ReferralInvite.status.in_(_IN_TREE),
        )
        .cte("edges")
    )
    invited = select(edges.c.invitee_customer_id)
    walk = (
        select(
            edges.c.invitee_customer_id.label("customer_id"),
            edges.c.inviter_customer_id.label("inviter_id"),
            edges.c.status.label("status"),
            literal(1).label("depth"),
        )
        .where(edges.c.inviter_customer_id.not_in(invited))
        .cte("walk", recursive=True)
    )
    walk = walk.union_all(
        select(
            edges.c.invitee_customer_id,
            edges.c.inviter_customer_id,
            edges.c.status,
            walk.c.depth + 1,
        ).where(edges.c.inviter_customer_id == walk.c.customer_id, walk.c.depth < MAX_DEPTH)
    )
    rows = session.execute(select(walk.c.customer_id, walk.c.inviter_id, walk.c.status, walk.c.depth)).all()
    children: dict[int, list[tuple[int, str, int]]] = {}
    for customer_id, inviter_id, status, depth in rows:
        children.setdefault(inviter_id, []).append((customer_id, status, depth))
    roots = sorted({inviter for _c, inviter, _s, depth in rows if depth == 1})
    labels = names(session, actor=actor, customer_ids=roots + [r[0] for r in rows])
    out: list[TreeNode] = []

    def visit(customer_id: int, inviter: int | None, status: str | None, depth: int) -> None:
        out.append(
            TreeNode(
                customer_id=customer_id,
                name=labels.get(customer_id, "—"),
                inviter_customer_id=inviter,
                depth=depth,
                status=status,
            )
        )
        for child, child_status, child_depth in sorted(children.get(customer_id, [])):
            visit(child, customer_id, child_status, child_depth)

    for root in roots:
        visit(root, None, None, 0)
    return out


def board(
    session: Session, *, actor: Actor, campaign_id: int | None = None, limit: int = 50
) -> list[BoardRow]:
    """The KOC board: inviters ranked by counted invitees, then by their invitees' net revenue
    (purchases since each invite), in one statement; one campaign or all."""
    actor.require(Permission.READ)
    if campaign_id is not None:
        get_campaign(session, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    conditions = [
        ReferralInvite.workspace_id == actor.workspace_id,
        ReferralInvite.status.in_(_COUNTED),
    ]
    if campaign_id is not None:
        conditions.append(ReferralInvite.campaign_id == campaign_id)
    purchases = orders.purchases(workspace_id=actor.workspace_id).subquery()
    revenue = (
        select(
            ReferralInvite.invitee_customer_id.label("invitee"),
            func.coalesce(func.sum(purchases.c.net_cents), 0).label("net"),
        )
        .outerjoin(
            purchases,
            (purchases.c.customer_id == ReferralInvite.invitee_customer_id)
            & (purchases.c.placed_at >= ReferralInvite.invited_at),
        )
        .where(*conditions)
        .group_by(ReferralInvite.invitee_customer_id)
        .subquery()
    )
    per_invitee = (
        select(
            ReferralInvite.inviter_customer_id.label("inviter"),
            ReferralInvite.invitee_customer_id.label("invitee"),
        )
        .where(*conditions)
        .distinct()
        .subquery()
    )
    invitees = func.count(per_invitee.c.invitee)
    net = func.coalesce(func.sum(revenue.c.net), 0)
    rows = session.execute(
        select(per_invitee.c.inviter, invitees, net)
        .join(revenue, revenue.c.invitee == per_invitee.c.invitee)
        .group_by(per_invitee.c.inviter)
        .order_by(invitees.desc(), net.desc(), per_invitee.c.inviter)
        .limit(max(1, min(limit, 500)))
    ).all()
    labels = names(session, actor=actor, customer_ids=[r[0] for r in rows])
    out: list[BoardRow] = []
    for inviter, count, total in rows:
        if inviter not in labels:
            continue
        out.append(
            BoardRow(
                rank=len(out) + 1,
                inviter_customer_id=inviter,
                name=labels[inviter],
                invitees=int(count),
                downstream_net_cents=int(total or 0),
            )
        )
    return out
