"""Channels, their cost records per period (for ROI and CAC), and stores."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Date, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, UTCDateTime
from siyu.core.timeutil import utcnow


class SourceType(StrEnum):
    STORE = "store"
    DOUYIN = "douyin"
    TAOBAO = "taobao"
    MEITUAN = "meituan"
    ADS = "ads"
    OFFICIAL_ACCOUNT = "official_account"
    WECOM_LIVE_CODE = "wecom_live_code"
    MINI_PROGRAM = "mini_program"
    REFERRAL = "referral"
    OTHER = "other"


class Channel(Base):
    __tablename__ = "channel"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))  # stable code used in files: "douyin", "store-sh-01"
    name: Mapped[str] = mapped_column(String(200))
    source_type: Mapped[str] = mapped_column(String(32))
    # other spellings that map to this channel in imported files (抖音, Douyin, dy, …)
    aliases: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChannelCost(Base):
    """Money spent on a channel over a period [period_start, period_end] (inclusive dates).

    `source_key` names what the money was spent on when another domain books it (`live_code:12`, the
    cost of one live code): one record per source, which may overlap other costs of the channel.
    Costs booked by hand have none and never overlap each other."""

    __tablename__ = "channel_cost"
    __table_args__ = (UniqueConstraint("workspace_id", "source_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id", ondelete="CASCADE"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    note: Mapped[str] = mapped_column(String(500), default="")
    source_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Store(Base):
    __tablename__ = "store"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(500), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
