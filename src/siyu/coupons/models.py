"""Coupon templates (the campaign and its rule), issued coupons (one per customer and code) and the
redemptions that used them on an order (reversed, never deleted, when the order is refunded)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, UTCDateTime
from siyu.core.timeutil import utcnow


class CouponType(StrEnum):
    AMOUNT_OFF = "amount_off"  # 满减: ¥X off an order of at least ¥Y
    PERCENT_OFF = "percent_off"  # 折扣: a percentage off, at most a cap
    NO_THRESHOLD = "no_threshold"  # 无门槛: ¥X off any order
    GIFT = "gift"  # 满赠: a gift item with an order of at least ¥Y
    ADD_ON = "add_on"  # 加价购: an add-on item at a special price with an order of at least ¥Y


class TemplateStatus(StrEnum):
    ACTIVE = "active"  # coupons may be issued
    ARCHIVED = "archived"  # no more issues; coupons held stay usable until they expire


class CouponStatus(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"  # shown, never stored: an issued coupon past its expires_at
    REVOKED = "revoked"


class IssueSource(StrEnum):
    """What issued a coupon; `source_ref` names the journey step, broadcast, referral, upgrade…"""

    JOURNEY = "journey"
    BROADCAST = "broadcast"
    REFERRAL = "referral"
    STAFF = "staff"
    API = "api"
    TIER_UPGRADE = "tier_upgrade"


class CouponTemplate(Base):
    __tablename__ = "coupon_template"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        CheckConstraint("issued_count >= 0", name="issued_count_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TemplateStatus.ACTIVE)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    threshold_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # the order must reach it
    discount_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # 满减 and 无门槛
    percent_off: Mapped[int] = mapped_column(Integer, default=0)  # 折扣: 20 = 20% off (八折)
    cap_cents: Mapped[int | None] = mapped_column(BigInteger)  # 折扣: the most it takes off
    item_sku: Mapped[str | None] = mapped_column(String(100))  # 满赠 and 加价购
    item_name: Mapped[str | None] = mapped_column(String(200))
    item_price_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # the item's list price
    add_on_price_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # 加价购: what the customer pays
    # validity: fixed dates (valid_from..valid_until) or valid_days after issue
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_days: Mapped[int | None] = mapped_column(Integer)
    total_cap: Mapped[int | None] = mapped_column(Integer)  # None: no cap
    per_customer_cap: Mapped[int] = mapped_column(Integer, default=1)
    issued_count: Mapped[int] = mapped_column(Integer, default=0)  # kept under the template's row lock
    cost_per_redemption_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Base):
    __tablename__ = "coupon"
    __table_args__ = (
        UniqueConstraint("workspace_id", "code"),
        # a retried issue (same template and key) finds the coupon the first one made
        UniqueConstraint("workspace_id", "template_id", "idempotency_key"),
        Index("ix_coupon_template_customer", "template_id", "customer_id"),
        Index("ix_coupon_ws_customer", "workspace_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_template.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=CouponStatus.ISSUED)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_kind: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    issued_by_user_id: Mapped[int | None] = mapped_column(BigId)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CouponRedemption(Base):
    """A coupon used on an order: what it took off (or gave); reversed (not deleted) on a refund."""

    __tablename__ = "coupon_redemption"
    __table_args__ = (
        # a retried redemption of the same coupon on the same order is the same redemption
        UniqueConstraint("coupon_id", "order_ref"),
        Index("ix_coupon_redemption_ws_order", "workspace_id", "order_ref"),
        Index("ix_coupon_redemption_template", "template_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupon.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_template.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    order_ref: Mapped[str] = mapped_column(String(100))  # the order's external id
    order_amount_cents: Mapped[int] = mapped_column(BigInteger)  # before the coupon
    discount_cents: Mapped[int] = mapped_column(BigInteger)  # taken off the order
    benefit_cents: Mapped[int] = mapped_column(BigInteger)  # what the brand gives: discount or item value
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reversal_reason: Mapped[str | None] = mapped_column(String(100))
