"""Customers, identities, consent history, per-customer rollups, merge log and identity review flags."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class IdentityKind(StrEnum):
    """Built-in identity kinds; a workspace may also use custom kinds (any other lowercase name)."""

    PHONE = "phone"
    EMAIL = "email"
    WECOM_EXTERNAL_USERID = "wecom_external_userid"
    WECHAT_UNIONID = "wechat_unionid"
    WECHAT_OPENID = "wechat_openid"
    SHOP_MEMBER_ID = "shop_member_id"
    DOUYIN_OPEN_ID = "douyin_open_id"


# A person holds at most one value of these kinds: two customers holding different values of one of
# them are different people, so a record linking them is flagged for review instead of merged.
SINGLE_VALUED_KINDS = frozenset(
    {IdentityKind.WECHAT_UNIONID, IdentityKind.SHOP_MEMBER_ID, IdentityKind.DOUYIN_OPEN_ID}
)


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class Customer(Base):
    __tablename__ = "customer"
    __table_args__ = (Index("ix_customer_ws_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    gender: Mapped[str] = mapped_column(String(8), default=Gender.UNKNOWN)
    birthday: Mapped[date | None] = mapped_column(Date)
    city: Mapped[str | None] = mapped_column(String(100))
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    owner_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    first_channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # set when this record was merged into another; such a record is hidden from every list
    merged_into_id: Mapped[int | None] = mapped_column(BigId, index=True)
    # set when the person was erased (PIPL); the row stays so anonymised orders keep a key
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Identity(Base):
    """One way to recognise a person: kind + normalised value, unique per workspace."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactChannel(StrEnum):
    """Channels a brand reaches a customer through (consent is given per contact channel)."""

    WECOM = "wecom"
    SMS = "sms"
    EMAIL = "email"
    OFFICIAL_ACCOUNT = "official_account"
    MINI_PROGRAM = "mini_program"
    WEBHOOK = "webhook"
    PHONE_CALL = "phone_call"


class ConsentPurpose(StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class Consent(Base):
    """One consent decision; the newest row per (customer, contact channel, purpose) is in force."""

    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_lookup", "customer_id", "contact_channel", "purpose", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    contact_channel: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerRollup(Base):
    """Per-customer figures kept current as orders and events arrive; a full rebuild gives the same."""

    __tablename__ = "customer_rollup"
    __table_args__ = (Index("ix_customer_rollup_ws_last_order", "workspace_id", "last_order_at"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    gross_revenue_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    net_revenue_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    avg_order_value_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    categories: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    first_channel_id: Mapped[int | None] = mapped_column(BigId)
    last_channel_id: Mapped[int | None] = mapped_column(BigId)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MergeLog(Base):
    """A merge of one customer into another, with what moved, so that it can be undone."""

    __tablename__ = "merge_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    survivor_id: Mapped[int] = mapped_column(BigId, index=True)
    merged_id: Mapped[int] = mapped_column(BigId, index=True)
    reason: Mapped[str] = mapped_column(String(200))
    moved: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    actor_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdentityReview(Base):
    """Two customers a record links although their strong keys conflict: a person decides."""

    __tablename__ = "identity_review"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    customer_a_id: Mapped[int] = mapped_column(BigId)
    customer_b_id: Mapped[int] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(String(300))
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | merged | dismissed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_user_id: Mapped[int | None] = mapped_column(BigId)
