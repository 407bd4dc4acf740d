"""Points rules per workspace, the append-only points ledger with each customer's account (the balance
kept in step, never below zero), tiers, each customer's tier and the history of tier changes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class EntryKind(StrEnum):
    EARN = "earn"  # points from a paid order or an action (sign-up, review, referral, custom)
    SPEND = "spend"  # points used (redeemed for something)
    REVERSE = "reverse"  # points of a refunded order taken back
    EXPIRE = "expire"  # points past their expiry, written by the sweep (or before a spend)
    ADJUST = "adjust"  # a member's correction, up or down


class Action(StrEnum):
    SIGN_UP = "sign_up"
    REVIEW = "review"
    REFERRAL = "referral"
    CUSTOM = "custom"


class TierBasis(StrEnum):
    SPEND = "spend"  # net spend on paid orders over the last 12 months
    POINTS = "points"  # points earned over the last 12 months


class PointsRules(Base):
    __tablename__ = "points_rules"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    points_per_yuan: Mapped[int] = mapped_column(Integer, default=1)  # per whole ¥1 paid (net)
    sign_up_points: Mapped[int] = mapped_column(Integer, default=0)
    review_points: Mapped[int] = mapped_column(Integer, default=0)
    referral_points: Mapped[int] = mapped_column(Integer, default=0)
    expiry_months: Mapped[int | None] = mapped_column(Integer)  # None: points never expire
    tier_basis: Mapped[str] = mapped_column(String(16), default=TierBasis.SPEND)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PointsAccount(Base):
    """A customer's balance: the sum of their ledger, kept in step under the row's lock."""

    __tablename__ = "points_account"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        Index("ix_points_account_ws", "workspace_id"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PointsEntry(Base):
    """One line of the ledger: never updated or deleted (a correction is a new entry). Each source (an
    order, a review, a refund level, an expiry run…) applies once: (workspace, source_kind, source_ref)
    is unique."""

    __tablename__ = "points_entry"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source_kind", "source_ref"),
        Index("ix_points_entry_customer", "customer_id", "id"),
        Index("ix_points_entry_ws_order", "workspace_id", "order_ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)  # signed: credits > 0, debits < 0
    balance_after: Mapped[int] = mapped_column(BigInteger)
    # a reversal that asked for more than the balance: the part not taken back (the balance stays >= 0)
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    source_kind: Mapped[str] = mapped_column(String(32))
    source_ref: Mapped[str] = mapped_column(String(160))
    order_ref: Mapped[str | None] = mapped_column(String(100))  # the order's external id, if any
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # credits only
    note: Mapped[str | None] = mapped_column(String(200))
    actor_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tier(Base):
    __tablename__ = "member_tier"
    __table_args__ = (UniqueConstraint("workspace_id", "name"), UniqueConstraint("workspace_id", "threshold"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # reached at this rolling 12-month value: cents of net spend, or points earned (the rules' basis)
    threshold: Mapped[int] = mapped_column(BigInteger)
    # benefits on reaching it: {"coupon_template_ids": [...]} (a coupon pack)
    benefits: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerTier(Base):
    __tablename__ = "customer_tier"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("member_tier.id", ondelete="SET NULL"))
    basis_value: Mapped[int] = mapped_column(BigInteger, default=0)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TierChange(Base):
    """An upgrade or downgrade: from which tier to which, on what value, when."""

    __tablename__ = "tier_change"
    __table_args__ = (Index("ix_tier_change_customer", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    from_tier_id: Mapped[int | None] = mapped_column(BigId)
    to_tier_id: Mapped[int | None] = mapped_column(BigId)
    direction: Mapped[str] = mapped_column(String(8))  # up | down
    basis: Mapped[str] = mapped_column(String(16))
    basis_value: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
