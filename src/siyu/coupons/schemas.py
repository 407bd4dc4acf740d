"""Pydantic shapes of coupons: templates in and out, issued coupons, redemptions, checks and reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from siyu.coupons.models import CouponType, IssueSource

CODE_MAX = 64  # longer input is refused before any lookup (codes are 16 characters)
REF_MAX = 100


class TemplateIn(BaseModel):
    name: str = Field(max_length=100, description="Unique in the workspace, e.g. 双11 满300减50.")
    type: CouponType
    currency: str = Field("CNY", min_length=3, max_length=3)
    threshold_cents: int = Field(0, ge=0, description="The order must reach this amount (not 无门槛).")
    discount_cents: int = Field(0, ge=0, description="满减 / 无门槛: the amount taken off.")
    percent_off: int = Field(0, ge=0, le=100, description="折扣: 20 takes 20% off (八折).")
    cap_cents: int | None = Field(None, ge=1, description="折扣: the most taken off.")
    item_sku: str | None = Field(None, max_length=100, description="满赠 / 加价购: the item.")
    item_name: str | None = Field(None, max_length=200)
    item_price_cents: int = Field(0, ge=0, description="满赠 / 加价购: the item's list price.")
    add_on_price_cents: int = Field(0, ge=0, description="加价购: what the customer pays for the item.")
    valid_from: datetime | None = Field(None, description="Fixed validity: from (with valid_until).")
    valid_until: datetime | None = None
    valid_days: int | None = Field(None, ge=1, le=3650, description="Or: valid this many days after issue.")
    total_cap: int | None = Field(None, ge=1, description="At most this many coupons ever; none: no cap.")
    per_customer_cap: int = Field(1, ge=1, le=1000)
    cost_per_redemption_cents: int = Field(0, ge=0, description="Other cost of each use (for ROI).")


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    type: CouponType
    status: str
    currency: str
    threshold_cents: int
    discount_cents: int
    percent_off: int
    cap_cents: int | None
    item_sku: str | None
    item_name: str | None
    item_price_cents: int
    add_on_price_cents: int
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    total_cap: int | None
    per_customer_cap: int
    issued_count: int
    cost_per_redemption_cents: int
    created_at: datetime


class IssueIn(BaseModel):
    customer_id: int
    idempotency_key: str = Field(
        min_length=1, max_length=REF_MAX, description="A retry with the same key returns the same coupon."
    )
    source_kind: IssueSource = IssueSource.API
    source_ref: str | None = Field(None, max_length=REF_MAX)


class CouponOut(BaseModel):
    id: int
    template_id: int
    template_name: str
    type: CouponType
    customer_id: int
    code: str
    status: str  # issued | redeemed | expired | revoked
    issued_at: datetime
    valid_from: datetime
    expires_at: datetime
    source_kind: str
    source_ref: str | None
    redeemed_at: datetime | None


class LineIn(BaseModel):
    sku: str = Field("", max_length=100)
    quantity: int = Field(1, ge=1, le=100_000)
    amount_cents: int = Field(ge=0, le=10**12)


class RedeemIn(BaseModel):
    code: str = Field(min_length=1, max_length=CODE_MAX)
    customer_id: int
    order_ref: str = Field(min_length=1, max_length=REF_MAX, description="The order's external id.")
    amount_cents: int = Field(ge=0, le=10**12, description="The order amount before the coupon.")
    lines: list[LineIn] | None = Field(None, max_length=500)


class Benefit(BaseModel):
    """What a coupon gives on an order: an amount off, or an item (free or at a special price)."""

    discount_cents: int
    item_sku: str | None = None
    item_name: str | None = None
    item_price_cents: int | None = None  # 满赠: 0 (free); 加价购: the special price
    benefit_cents: int  # the brand's cost: the discount, or the item's value given away


class RedemptionOut(BaseModel):
    id: int
    coupon_id: int
    template_id: int
    customer_id: int
    order_ref: str
    order_amount_cents: int
    discount_cents: int
    benefit: Benefit
    redeemed_at: datetime
    reversed_at: datetime | None


class PublicCheckIn(BaseModel):
    """A shop's or mini program's check of a code before checkout (no login: rate-limited)."""

    code: str = Field(min_length=1, max_length=CODE_MAX)
    phone: str = Field(
        min_length=3,
        max_length=32,
        pattern=r"^[0-9+() .-]+$",
        description="The customer's phone number, in any usual spelling (digits, +, spaces, dashes).",
    )
    amount_cents: int = Field(ge=0, le=10**12)


class PublicCheckOut(BaseModel):
    usable: bool
    benefit: Benefit | None = None
    reason: str | None = None  # why not: expired | used | threshold_not_met | not_yet_valid | not_found
    message: str | None = None


class TemplateReport(BaseModel):
    template_id: int
    name: str
    type: CouponType
    issued: int
    redeemed: int
    redemption_rate: float | None  # redeemed / issued
    attributed_gmv_cents: int  # what orders that redeemed paid
    cost_cents: int  # benefits given + per-redemption cost
    roi: float | None  # (GMV − cost) / cost
