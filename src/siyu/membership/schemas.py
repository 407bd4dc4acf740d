"""Pydantic shapes of membership: points rules, ledger entries, adjustments, tiers and the member view."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from siyu.coupons.schemas import CouponOut
from siyu.membership.models import Action, TierBasis


class RulesIn(BaseModel):
    points_per_yuan: int = Field(1, ge=0, le=1000, description="Points per whole ¥1 paid (net).")
    sign_up_points: int = Field(0, ge=0, le=1_000_000)
    review_points: int = Field(0, ge=0, le=1_000_000)
    referral_points: int = Field(0, ge=0, le=1_000_000)
    expiry_months: int | None = Field(None, ge=1, le=120, description="Points expire N months after earning.")
    tier_basis: TierBasis = TierBasis.SPEND


class RulesOut(RulesIn):
    updated_at: datetime | None = None


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    kind: str
    points: int
    balance_after: int
    shortfall: int
    source_kind: str
    source_ref: str
    order_ref: str | None
    expires_at: datetime | None
    note: str | None
    created_at: datetime


class AdjustIn(BaseModel):
    points: int = Field(description="Positive adds, negative takes away (refused below zero).")
    reason: str = Field(min_length=1, max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=100, description="A retry applies once.")


class ActionIn(BaseModel):
    action: Action
    source_ref: str = Field(min_length=1, max_length=100, description="The review id, referral id…")
    points: int | None = Field(None, ge=1, le=1_000_000, description="custom: the points to give.")


class TierIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="e.g. 金卡")
    threshold: int = Field(ge=0, description="Rolling 12-month cents of spend, or points (the basis).")
    coupon_template_ids: list[int] = Field(
        default_factory=list, max_length=20, description="The pack on upgrade."
    )


class TierOut(BaseModel):
    id: int
    name: str
    threshold: int
    coupon_template_ids: list[int]


class TierChangeOut(BaseModel):
    id: int
    from_tier: str | None
    to_tier: str | None
    direction: str
    basis: str
    basis_value: int
    changed_at: datetime


class MemberView(BaseModel):
    customer_id: int
    balance: int
    tier: str | None
    tier_since: datetime | None
    basis: str
    basis_value: int
    entries: list[EntryOut]
    tier_history: list[TierChangeOut]
    coupons: list[CouponOut]
