"""Rewards of the tiers an inviter reached, granted exactly once per (campaign, inviter, tier) even
under concurrent retries: decided under the campaign row's lock, backed by the reward's unique key,
and the coupon issue and points credit use that same key as their own idempotent source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core import audit, domain_events
from siyu.core.errors import Conflict
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.membership import service as membership
from siyu.membership.models import EntryKind
from siyu.referrals.models import InviteStatus, ReferralInvite, ReferralReward, ReferralTier
from siyu.referrals.service.campaigns import locked_campaign, tiers_of

EVENT_REWARDED = "referral.rewarded"
POINTS_SOURCE = "referral_reward"


def reward_key(*, campaign_id: int, inviter_customer_id: int, tier_id: int) -> str:
    return f"referral:{campaign_id}:{inviter_customer_id}:{tier_id}"


@dataclass(frozen=True)
class GrantResult:
    granted: list[ReferralReward]  # granted by this call
    capped: bool  # a reached tier was left out because the campaign's reward cap is used up


def qualified_count(session: Session, *, campaign_id: int, inviter_customer_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(ReferralInvite.id)).where(
                ReferralInvite.campaign_id == campaign_id,
                ReferralInvite.inviter_customer_id == inviter_customer_id,
                ReferralInvite.status == InviteStatus.QUALIFIED,
            )
        )
        or 0
    )


def _granted_tier_ids(session: Session, *, campaign_id: int, inviter_customer_id: int) -> set[int]:
    return set(
        session.scalars(
            select(ReferralReward.tier_id).where(
                ReferralReward.campaign_id == campaign_id,
                ReferralReward.inviter_customer_id == inviter_customer_id,
            )
        )
    )


def _pay(session: Session, *, reward: ReferralReward, tier: ReferralTier, at: datetime) -> None:
    if tier.coupon_template_id is not None:
        try:
            coupon = coupons.issue(
                session,
                workspace_id=reward.workspace_id,
                template_id=tier.coupon_template_id,
                customer_id=reward.inviter_customer_id,
                source_kind="referral",
                source_ref=f"campaign-{reward.campaign_id}:tier-{tier.threshold}",
                idempotency_key=reward.idempotency_key,
                at=at,
            )
            reward.coupon_id = coupon.id
        except Conflict as exc:
            # the template's caps are spent or it was archived: the points (if any) still go, and the
            # audit row says why the coupon did not
            audit.record(
                session,
                workspace_id=reward.workspace_id,
                actor_user_id=None,
                action="referral.coupon_refused",
                target_type="referral_reward",
                target_id=reward.id,
                detail={"reason": exc.message[:200]},
            )
    if tier.points > 0:
        membership.apply(
            session,
            workspace_id=reward.workspace_id,
            customer_id=reward.inviter_customer_id,
            kind=EntryKind.EARN,
            points=tier.points,
            source_kind=POINTS_SOURCE,
            source_ref=reward.idempotency_key,
            note=f"referral campaign {reward.campaign_id}, {tier.threshold} invites",
            at=at,
        )
        reward.points = tier.points


def grant_rewards(
    session: Session,
    *,
    workspace_id: int,
    campaign_id: int,
    inviter_customer_id: int,
    at: datetime | None = None,
) -> GrantResult:
    """Grant the rewards of every tier the inviter's qualified invites reach and that they do not hold
    yet, within the campaign's reward cap. Idempotent: a retry, even a concurrent one, grants nothing
    more (the second waits for the campaign's lock, then finds the rewards)."""
    campaign = locked_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    count = qualified_count(session, campaign_id=campaign.id, inviter_customer_id=inviter_customer_id)
    held = _granted_tier_ids(session, campaign_id=campaign.id, inviter_customer_id=inviter_customer_id)
    now = at or utcnow()
    granted: list[ReferralReward] = []
    capped = False
    for tier in tiers_of(session, campaign_id=campaign.id):
        if tier.threshold > count or tier.id in held:
            continue
        if campaign.reward_cap is not None and campaign.rewards_granted >= campaign.reward_cap:
            capped = True
            break
        reward = ReferralReward(
            workspace_id=workspace_id,
            campaign_id=campaign.id,
            inviter_customer_id=inviter_customer_id,
            tier_id=tier.id,
            idempotency_key=reward_key(
                campaign_id=campaign.id, inviter_customer_id=inviter_customer_id, tier_id=tier.id
            ),
            points=0,
            granted_at=now,
        )
        try:
            with session.begin_nested():
                session.add(reward)
                session.flush()
        except IntegrityError:
            continue  # granted by a concurrent call meanwhile: the unique key is the last guard
        _pay(session, reward=reward, tier=tier, at=now)
        campaign.rewards_granted += 1
        granted.append(reward)
        audit.record(
            session,
            workspace_id=workspace_id,
            actor_user_id=None,
            action="referral.rewarded",
            target_type="referral_reward",
            target_id=reward.id,
            detail={"campaign_id": campaign.id, "tier": tier.threshold, "coupon_id": reward.coupon_id},
        )
        domain_events.record(
            session,
            workspace_id=workspace_id,
            type=EVENT_REWARDED,
            customer_id=inviter_customer_id,
            payload={"campaign_id": campaign.id, "tier_id": tier.id, "threshold": tier.threshold},
            occurred_at=now,
        )
    session.flush()
    return GrantResult(granted=granted, capped=capped)


def rewards_of(session: Session, *, workspace_id: int, campaign_id: int) -> list[ReferralReward]:
    return list(
        session.scalars(
            select(ReferralReward)
            .where(ReferralReward.workspace_id == workspace_id, ReferralReward.campaign_id == campaign_id)
            .order_by(ReferralReward.id)
        )
    )
