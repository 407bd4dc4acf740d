"""Live codes (活码), the staff they hand scanners to, every scan of their landing page, and every
WeCom add (and later deletion) attributed to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class LiveCode(Base):
    """One placement (a store table, a poster, a parcel insert, an ad, an event) with its QR code.

    `token` is the unguessable part of the landing URL `/l/{token}`; `state` is what WeCom hands back
    in the add_external_contact callback (≤ 30 characters), derived from the token.
    """

    __tablename__ = "live_code"
    __table_args__ = (
        UniqueConstraint("token"),
        UniqueConstraint("workspace_id", "state"),
        Index("ix_live_code_ws_created", "workspace_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    placement: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("store.id", ondelete="SET NULL"))
    strategy: Mapped[str] = mapped_column(String(16))
    # round robin: how many assignments were made, so the next one goes to the staff member after
    rr_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    auto_tag_ids: Mapped[list[int]] = mapped_column(JsonDoc, default=list)
    welcome_text: Mapped[str] = mapped_column(Text, default="")
    cost_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LiveCodeStaff(Base):
    """A staff member a live code may hand scanners to: weight, daily cap, schedule, online flag.

    `weekdays` holds ISO weekday digits ("12345" = Monday to Friday); `start_minute`/`end_minute` the
    working hours in the workspace's time zone (minutes after midnight; none: all day).
    """

    __tablename__ = "live_code_staff"
    __table_args__ = (UniqueConstraint("live_code_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    live_code_id: Mapped[int] = mapped_column(ForeignKey("live_code.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    is_backup: Mapped[bool] = mapped_column(Boolean, default=False)
    is_online: Mapped[bool] = mapped_column(Boolean, default=True)
    weekdays: Mapped[str] = mapped_column(String(7), default="1234567")
    start_minute: Mapped[int | None] = mapped_column(Integer)
    end_minute: Mapped[int | None] = mapped_column(Integer)
    # smooth weighted round robin: this member's running credit
    current_weight: Mapped[int] = mapped_column(BigInteger, default=0)
    # the staff member's own WeCom "contact me" QR for this code's state (from add_contact_way)
    contact_qr_url: Mapped[str | None] = mapped_column(String(500))


class LiveCodeScan(Base):
    """One visit to a live code's landing page and the staff member it was handed to (none: nobody was
    available). Only keyed hashes of the client's address and user agent are kept, never the raw values."""

    __tablename__ = "live_code_scan"
    __table_args__ = (
        Index("ix_live_code_scan_code_time", "live_code_id", "scanned_at"),
        Index("ix_live_code_scan_code_staff_time", "live_code_id", "staff_user_id", "scanned_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    live_code_id: Mapped[int] = mapped_column(ForeignKey("live_code.id", ondelete="CASCADE"))
    staff_user_id: Mapped[int | None] = mapped_column(BigId)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    visitor_hash: Mapped[str] = mapped_column(String(32))
    ip_hash: Mapped[str] = mapped_column(String(32))


class LiveCodeAdd(Base):
    """A customer added a staff member on WeCom through a live code (the add_external_contact callback
    carrying the code's state). `is_new_customer`: the external user id named nobody before (first add
    wins for acquisition); a later add by a known customer is a returning add. The welcome message is
    queued here (`welcome_status` pending) for the WeCom worker task to send within 20 seconds."""

    __tablename__ = "live_code_add"
    __table_args__ = (
        # a retried callback lands once
        UniqueConstraint("live_code_id", "external_userid", "staff_wecom_userid"),
        Index("ix_live_code_add_code_time", "live_code_id", "added_at"),
        Index("ix_live_code_add_ws_contact", "workspace_id", "external_userid", "staff_wecom_userid"),
        # the worker looks for pending welcome messages on every poll
        Index("ix_live_code_add_welcome", "welcome_status", "added_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    live_code_id: Mapped[int] = mapped_column(ForeignKey("live_code.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    staff_user_id: Mapped[int | None] = mapped_column(BigId)
    staff_wecom_userid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    is_new_customer: Mapped[bool] = mapped_column(Boolean)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    welcome_text: Mapped[str] = mapped_column(Text, default="")
    welcome_status: Mapped[str] = mapped_column(String(16), default="none")  # none|pending|sent|failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
