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
    # what each staff member's WeCom contact way carries besides the state (update_contact_way on change)
    wecom_remark: Mapped[str] = mapped_column(String(30), default="")
    wecom_skip_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LiveCodeStaff(Base):
    """A staff member a live code may hand scanners to: weight, daily cap, schedule, online flag.

    `weekdays` holds ISO weekday digits ("12345" = Monday to Friday); `start_minute`/`end_minute` the
    working hours in the workspace's time zone (minutes after midnight; none: all day).

    The `wecom_*` columns are the member's own WeCom contact way for this code (type 1, scene 2, the
    code's state), pushed by the WeCom worker (docs/livecodes.md, "WeCom contact ways"): an edit bumps
    `wecom_version`, the worker records the version it pushed. A member taken off the code stays as a
    row with `removed_at` until the worker has deleted their way in WeCom.
    """

    __tablename__ = "live_code_staff"
    __table_args__ = (
        UniqueConstraint("live_code_id", "user_id"),
        Index("ix_live_code_staff_ws", "workspace_id"),
    )

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
    # a hand-entered "contact me" QR, used while no WeCom contact way is synced for the member
    contact_qr_url: Mapped[str | None] = mapped_column(String(500))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wecom_config_id: Mapped[str | None] = mapped_column(String(64))
    wecom_qr_url: Mapped[str | None] = mapped_column(String(500))  # add_contact_way's qr_code
    wecom_version: Mapped[int] = mapped_column(Integer, default=1)
    wecom_synced_version: Mapped[int] = mapped_column(Integer, default=0)
    wecom_error: Mapped[str | None] = mapped_column(Text)
    wecom_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # backoff after a failure, and the lease of the worker pushing the row
    wecom_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # set (and committed) before add_contact_way is called, cleared once its config_id is stored: when
    # found set, a way may exist in WeCom that siyu never heard of, and it is looked up before adding
    wecom_adding_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wecom_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
