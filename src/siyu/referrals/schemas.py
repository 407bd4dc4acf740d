"""Referral campaigns, links, invites, progress, the board and agents in and out of the JSON API (the
page forms build the same `CampaignIn`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from siyu.referrals.models import Qualification


class TierIn(BaseModel):
    threshold: int = Field(ge=1, le=100000, description="Qualified invites needed, e.g. 3.")
    coupon_template_id: int | None = Field(None, description="A coupon template to issue.")
    points: int = Field(0, ge=0, le=10_000_000, description="Points to credit.")


class BackgroundIn(BaseModel):
    kind: str = Field("gradient", description="solid or gradient (an uploaded image replaces both).")
    colors: list[str] = Field(default_factory=lambda: ["#c0392b", "#f39c12"], max_length=2)


class CampaignIn(BaseModel):
    name: str = Field(max_length=200)
    title: str = Field(max_length=100, description="Printed on the poster, e.g. 邀3位好友得20元券.")
    qualification: Qualification = Qualification.JOIN
    min_order_cents: int = Field(0, ge=0, description="first_order: the order must reach this amount.")
    starts_at: datetime | None = Field(None, description="None: now.")
    ends_at: datetime | None = None
    reward_cap: int | None = Field(None, ge=1, description="At most this many tier rewards in all.")
    invites_per_hour: int | None = Field(None, ge=1, description="Velocity limit per inviter.")
    invites_per_day: int | None = Field(None, ge=1)
    channel_id: int | None = Field(None, description="The first channel of new customers it brings.")
    background: BackgroundIn = Field(default_factory=BackgroundIn)
    tiers: list[TierIn] = Field(min_length=1, max_length=20)


class TierOut(TierIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class CampaignOut(BaseModel):
    id: int
    name: str
    title: str
    qualification: str
    min_order_cents: int
    starts_at: datetime
    ends_at: datetime | None
    reward_cap: int | None
    invites_per_hour: int | None
    invites_per_day: int | None
    channel_id: int | None
    rewards_granted: int
    is_active: bool
    has_poster_image: bool
    tiers: list[TierOut]
    created_at: datetime


class LinkIn(BaseModel):
    customer_id: int


class LinkOut(BaseModel):
    campaign_id: int
    inviter_customer_id: int
    token: str
    path: str
    url: str


class InviteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    inviter_customer_id: int
    invitee_customer_id: int
    status: str
    reason: str
    invited_at: datetime
    qualified_at: datetime | None
    reviewed_at: datetime | None


class ReviewIn(BaseModel):
    decision: str = Field(description="approve or reject")


class ProgressOut(BaseModel):
    inviter_customer_id: int
    inviter_name: str
    invites: int  # every invite through the link
    counted: int  # joined or qualified
    qualified: int
    held: int
    rewards: int
    next_threshold: int | None
    to_next: int | None


class TreeNode(BaseModel):
    customer_id: int
    name: str
    inviter_customer_id: int | None
    depth: int
    status: str | None


class BoardRow(BaseModel):
    rank: int
    inviter_customer_id: int
    name: str
    invitees: int
    downstream_net_cents: int


class AgentIn(BaseModel):
    customer_id: int
    rate_percent: float = Field(ge=0, le=100, description="Commission on the net, e.g. 5 for 5%.")
    category_rates_percent: dict[str, float] = Field(
        default_factory=dict, description="Per order-line category, overriding the rate."
    )


class AgentOut(BaseModel):
    id: int
    customer_id: int
    name: str
    rate_bp: int
    category_rates_bp: dict[str, int]
    is_active: bool
    invitees: int
    accrued_cents: int
    reversed_cents: int
    balance_cents: int


class CommissionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agent_id: int
    invitee_customer_id: int
    order_ref: str
    kind: str
    basis_cents: int
    amount_cents: int
    created_at: datetime
