"""Tables of content: message templates (per-channel variants), the content library (话术库) of
reusable snippets and materials, and the tracked short links rendered into messages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class SnippetKind(StrEnum):
    TEXT = "text"  # a reusable text (话术), includable in templates
    IMAGE = "image"  # an image URL
    LINK = "link"  # a link card: title, url, description, picture
    MINIPROGRAM = "miniprogram"  # a mini-program card: title, appid, page, picture


class MessageTemplate(Base):
    """A message with one variant per channel; its strings are Jinja templates rendered per customer."""

    __tablename__ = "content_template"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    # channel → variant, e.g. {"sms": {"text": "…", "sign_name": "…"}, "email": {"subject": …, "text": …}}
    variants: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Snippet(Base):
    """One item of the content library: a text staff copy into chats or templates include, or a
    material (image, link card, mini-program card) for WeCom attachments."""

    __tablename__ = "content_snippet"
    __table_args__ = (
        UniqueConstraint("workspace_id", "key"),
        Index("ix_content_snippet_ws_group", "workspace_id", "group_name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))  # what a template includes: {% include "key" %}
    kind: Mapped[str] = mapped_column(String(16), default=SnippetKind.TEXT)
    title: Mapped[str] = mapped_column(String(200))
    group_name: Mapped[str] = mapped_column(String(64), default="")
    tags: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    # the material's fields (image: url; link: title, url, desc, picurl; miniprogram: title, appid, page, …)
    fields: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    copy_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShortLink(Base):
    """A tracked link of one message: `/s/{token}` redirects to `url`, stored when the message was
    rendered (so the redirect can only lead where a template pointed)."""

    __tablename__ = "content_short_link"
    __table_args__ = (
        UniqueConstraint("token"),
        Index("ix_content_short_link_message", "message_id"),
        Index("ix_content_short_link_ws_source", "workspace_id", "source", "source_ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # no foreign keys: one row per message and link of a broadcast (docs/architecture.md)
    workspace_id: Mapped[int] = mapped_column(BigId)
    token: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[int] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # every visit; the event is recorded once
