"""Experiments (A/B tests) with their variants, and the exposures that say who was put in which arm
and when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, UTCDateTime
from siyu.core.timeutil import utcnow


class ExperimentStatus(StrEnum):
    DRAFT = "draft"  # variants may change; nobody is assigned yet
    RUNNING = "running"  # customers are assigned and exposed
    STOPPED = "stopped"  # no more assignments; the results stay readable


class Experiment(Base):
    __tablename__ = "experiment"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))  # the hash seed of assignment: never changes
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=ExperimentStatus.DRAFT)
    holdout_share: Mapped[float] = mapped_column(Float, default=0.0)
    goal_event: Mapped[str | None] = mapped_column(String(64))  # None: the goal is a purchase
    goal_window_days: Mapped[int] = mapped_column(Integer, default=14)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExperimentVariant(Base):
    __tablename__ = "experiment_variant"
    __table_args__ = (UniqueConstraint("experiment_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiment.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    position: Mapped[int] = mapped_column(Integer, default=0)  # the first variant is the control


class Exposure(Base):
    """A customer's first exposure to an experiment: the arm they are in (None: the holdout)."""

    __tablename__ = "experiment_exposure"
    __table_args__ = (
        UniqueConstraint("experiment_id", "customer_id"),
        Index("ix_experiment_exposure_experiment_variant", "experiment_id", "variant"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiment.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    variant: Mapped[str | None] = mapped_column(String(64))
    exposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
