"""The stage each customer is in, the history of their transitions, and the workspace's thresholds."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, UTCDateTime


class Stage(StrEnum):
    LEAD = "lead"  # in the pool, never bought
    NEW = "new"  # one purchase, not lapsed
    ACTIVE = "active"  # bought again, not lapsed
    LOYAL = "loyal"  # at least `loyal_orders` purchases, not lapsed
    DORMANT = "dormant"  # 沉睡: no purchase for k × their own typical gap (or a set number of days)
    CHURNED = "churned"  # no purchase for `churn_days`
    REACTIVATED = "reactivated"  # bought again after being dormant or churned, until the next purchase


class CustomerStage(Base):
    __tablename__ = "customer_stage"
    __table_args__ = (Index("ix_customer_stage_ws_stage", "workspace_id", "stage"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime)  # when the customer entered this stage
    reactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the purchase that reactivated


class StageTransition(Base):
    __tablename__ = "stage_transition"
    __table_args__ = (Index("ix_stage_transition_ws_at", "workspace_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(32))  # first_purchase, purchase, lapsed, churned, …


class LifecycleSettings(Base):
    """A workspace's thresholds; the defaults apply while it has none."""

    __tablename__ = "lifecycle_settings"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    loyal_orders: Mapped[int] = mapped_column(Integer, default=4)
    dormant_factor: Mapped[float] = mapped_column(Float, default=3.0)
    dormant_days: Mapped[int] = mapped_column(Integer, default=60)
    churn_days: Mapped[int] = mapped_column(Integer, default=180)
