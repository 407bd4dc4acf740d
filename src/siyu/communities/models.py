"""Community tables: siyu-side tags on customer groups, each group's uploaded join QR with its expiry,
group live codes (群活码) with the groups they hand out in turn, every hand-out of a code, and scheduled
group posts (群SOP) with each occurrence and its send per group owner.

The groups themselves, their members and their joins and leaves are WeCom's data, kept by
`siyu.wecom` (`wecom_group_chat`, `wecom_group_member`, `wecom_group_member_change`); rows here name a
group by its WeCom `chat_id`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class GroupTag(Base):
    """A tag the brand puts on a customer group (e.g. 门店群, 新品群, VIP)."""

    __tablename__ = "community_group_tag"
    __table_args__ = (UniqueConstraint("workspace_id", "chat_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupQr(Base):
    """The join QR image of a group as the owner saved it from WeCom; WeCom's group QR images expire
    7 days after they are made, so each carries its `expires_at` and an expired one is never handed out."""

    __tablename__ = "community_group_qr"
    __table_args__ = (UniqueConstraint("workspace_id", "chat_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(64))
    image: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupCode(Base):
    """A group live code (群活码): one QR and landing URL `/g/{token}` that hands out the join QR of
    the first of its groups still open — fewer than `cap` hand-outs and members, a QR not expired."""

    __tablename__ = "community_group_code"
    __table_args__ = (UniqueConstraint("token"), Index("ix_community_group_code_ws", "workspace_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    cap: Mapped[int] = mapped_column(Integer, default=200)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupCodeGroup(Base):
    """One group of a code, in hand-out order, with how many joiners the code sent to it."""

    __tablename__ = "community_group_code_group"
    __table_args__ = (UniqueConstraint("code_id", "chat_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    code_id: Mapped[int] = mapped_column(ForeignKey("community_group_code.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    handed_out: Mapped[int] = mapped_column(Integer, default=0)


class GroupCodeJoin(Base):
    """A visit of a code's landing page that was handed a group's join QR (`chat_id`), or none: every
    group was full or its QR expired."""

    __tablename__ = "community_group_code_join"
    __table_args__ = (Index("ix_community_group_code_join_code_time", "code_id", "joined_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    code_id: Mapped[int] = mapped_column(ForeignKey("community_group_code.id", ondelete="CASCADE"))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupPost(Base):
    """A scheduled post to customer groups (群SOP): its content (text and WeCom attachments), the groups
    it goes to (`target`: chosen groups, every group of chosen owners, or groups carrying a group tag,
    resolved at each occurrence), and when — once, or daily / weekly at a local time of day in the
    workspace's time zone. `next_at` is the next occurrence (UTC), None once a one-off is done."""

    __tablename__ = "community_group_post"
    __table_args__ = (Index("ix_community_group_post_due", "workspace_id", "next_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    target: Mapped[str] = mapped_column(String(8))  # groups | owners | tags
    target_values: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    repeat: Mapped[str] = mapped_column(String(8))  # once | daily | weekly
    time_of_day: Mapped[str] = mapped_column(String(5))  # HH:MM, local to the workspace
    weekdays: Mapped[list[int]] = mapped_column(JsonDoc, default=list)  # 0 Monday … 6 Sunday (weekly)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)  # no occurrence before this
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # a mini-program card's cover image, kept so that each occurrence can send a media_id younger than
    # WeCom's 3 days (media/upload); the last upload's media_id and time
    cover_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    cover_filename: Mapped[str | None] = mapped_column(String(120))
    cover_media_id: Mapped[str | None] = mapped_column(String(200))
    cover_uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GroupPostOccurrence(Base):
    """One occurrence of a group post, at most once per (post, time): the groups it was planned for,
    by owner (`plan`), and whether every owner's send went out (`status`: sending, sent, partial,
    failed, missed — the worker came more than the grace period late)."""

    __tablename__ = "community_group_post_occurrence"
    __table_args__ = (
        UniqueConstraint("post_id", "occurs_at"),
        Index("ix_community_group_post_occurrence_ws_status", "workspace_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("community_group_post.id", ondelete="CASCADE"))
    occurs_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8))
    plan: Mapped[dict[str, list[str]]] = mapped_column(JsonDoc, default=dict)  # owner -> chat ids
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GroupPostSend(Base):
    """An occurrence's send for one group owner (the sender of a WeCom group mass message): at most one
    per (occurrence, owner), with the WeCom mass message it became or WeCom's refusal."""

    __tablename__ = "community_group_post_send"
    __table_args__ = (UniqueConstraint("occurrence_id", "owner"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    occurrence_id: Mapped[int] = mapped_column(
        ForeignKey("community_group_post_occurrence.id", ondelete="CASCADE")
    )
    owner: Mapped[str] = mapped_column(String(64))
    chat_ids: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    mass_message_id: Mapped[int | None] = mapped_column(BigId)
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
