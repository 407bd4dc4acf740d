"""Referral campaigns (裂变): their rules and reward tiers, each inviter's personal link, every invite
with its review state, the rewards granted (one per campaign, inviter and tier), agents (小B / 分销) and
their append-only commission ledger."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class Qualification(StrEnum):
    """When an invite counts towards the inviter's tiers."""

    JOIN = "join"  # the friend joins (becomes a new customer through the link)
    FIRST_ORDER = "first_order"  # the friend's paid order of at least `min_order_cents`


class InviteStatus(StrEnum):
    JOINED = "joined"  # a new customer through the link, waiting for a qualifying order
    QUALIFIED = "qualified"  # counts towards the inviter's tiers
    HELD = "held"  # suspicious: waits in the review queue
    REJECTED = "rejected"  # refused (self-invite, the same person, a reviewer's decision)
    EXISTING = "existing"  # the friend was in the pool before the invite: recorded, never counted


COUNTED_STATUSES = (InviteStatus.JOINED, InviteStatus.QUALIFIED)


class ReferralCampaign(Base):
    """A campaign's rules: what qualifies an invite, when it runs, the cap on rewards, the velocity
    limit per inviter, and the poster's look (`poster_background`: solid or gradient colours, or an
    uploaded image in `poster_image`)."""

    __tablename__ = "referral_campaign"
    __table_args__ = (Index("ix_referral_campaign_ws_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(100))
    qualification: Mapped[str] = mapped_column(String(16))
    min_order_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reward_cap: Mapped[int | None] = mapped_column(Integer)  # tier rewards in the whole campaign
    invites_per_hour: Mapped[int | None] = mapped_column(Integer)
    invites_per_day: Mapped[int | None] = mapped_column(Integer)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id", ondelete="SET NULL"))
    poster_background: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    poster_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    rewards_granted: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferralTier(Base):
    """Reaching `threshold` qualified invites earns a coupon of a template, points, or both."""

    __tablename__ = "referral_tier"
    __table_args__ = (UniqueConstraint("campaign_id", "threshold"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("referral_campaign.id", ondelete="CASCADE"))
    threshold: Mapped[int] = mapped_column(Integer)
    coupon_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("coupon_template.id", ondelete="SET NULL")
    )
    points: Mapped[int] = mapped_column(Integer, default=0)


class ReferralLink(Base):
    """An inviter's personal link in a campaign: `/r/{token}`, the token unguessable."""

    __tablename__ = "referral_link"
    __table_args__ = (UniqueConstraint("token"), UniqueConstraint("campaign_id", "inviter_customer_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("referral_campaign.id", ondelete="CASCADE"))
    inviter_customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferralInvite(Base):
    """A friend who came through an inviter's link. One invite per friend and campaign: a friend is
    counted for the first inviter only."""

    __tablename__ = "referral_invite"
    __table_args__ = (
        UniqueConstraint("campaign_id", "invitee_customer_id"),
        Index("ix_referral_invite_inviter", "campaign_id", "inviter_customer_id", "invited_at"),
        Index("ix_referral_invite_ws_invitee", "workspace_id", "invitee_customer_id"),
        Index("ix_referral_invite_ws_status", "workspace_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("referral_campaign.id", ondelete="CASCADE"))
    inviter_customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    invitee_customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32), default="")  # why held, rejected or not counted
    # what the invite was before it was held, so that an approval restores it
    status_if_approved: Mapped[str | None] = mapped_column(String(16))
    client_hash: Mapped[str] = mapped_column(String(32), default="")
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    qualifying_order_ref: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_user_id: Mapped[int | None] = mapped_column(BigId)


class ReferralReward(Base):
    """The reward of one tier for one inviter, granted once: `idempotency_key` is
    `referral:{campaign}:{inviter}:{tier}`, also the coupon's idempotency key and the points' source."""

    __tablename__ = "referral_reward"
    __table_args__ = (
        UniqueConstraint("campaign_id", "inviter_customer_id", "tier_id"),
        UniqueConstraint("workspace_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("referral_campaign.id", ondelete="CASCADE"))
    inviter_customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    tier_id: Mapped[int] = mapped_column(ForeignKey("referral_tier.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    coupon_id: Mapped[int | None] = mapped_column(BigId)
    points: Mapped[int] = mapped_column(Integer, default=0)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferralAgent(Base):
    """A member made an agent (小B / 分销): their invitees' paid orders earn a commission, `rate_bp`
    basis points of the net, or per category (`category_rates_bp`: category → basis points)."""

    __tablename__ = "referral_agent"
    __table_args__ = (UniqueConstraint("workspace_id", "customer_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    rate_bp: Mapped[int] = mapped_column(Integer)
    category_rates_bp: Mapped[dict[str, int]] = mapped_column(JsonDoc, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommissionEntry(Base):
    """One line of the append-only commission ledger: an accrual on an invitee's paid order, or a
    reversal (negative) on its refund. `source_key` applies each once."""

    __tablename__ = "referral_commission"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source_key"),
        Index("ix_referral_commission_agent", "agent_id", "created_at"),
        Index("ix_referral_commission_order", "workspace_id", "order_ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("referral_agent.id", ondelete="CASCADE"))
    invitee_customer_id: Mapped[int] = mapped_column(BigId)
    order_ref: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # accrue | reverse
    basis_cents: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    source_key: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
