"""Tag groups, tags and the tags customers carry (one row per customer and tag, with where it came from)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, UTCDateTime
from siyu.core.timeutil import utcnow


class TagSource(StrEnum):
    """How a customer came to carry a tag."""

    MANUAL = "manual"  # a member tagged them (actor_user_id says who)
    RULE = "rule"  # a rule tag: a segment rule that keeps the tag current
    IMPORT = "import"  # an imported list
    LIVE_CODE = "live_code"  # scanned a WeCom live code (活码) that tags on adding
    JOURNEY = "journey"  # a journey (SOP) step


class TagGroup(Base):
    """A group of tags (WeCom: 标签组), e.g. 会员等级 or 口味偏好; names are unique per workspace."""

    __tablename__ = "tag_group"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tag(Base):
    """A tag of one group; names are unique within their group."""

    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("workspace_id", "group_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("tag_group.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerTag(Base):
    """A customer carries a tag: since when, from which source, and (manual) by whom."""

    __tablename__ = "customer_tag"
    __table_args__ = (Index("ix_customer_tag_ws_tag", "workspace_id", "tag_id", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    # what put it there beyond the source: a segment id for rule tags, a live code or journey id, an import
    source_ref: Mapped[str | None] = mapped_column(String(100))
    actor_user_id: Mapped[int | None] = mapped_column(BigId)
    tagged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
