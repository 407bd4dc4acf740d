"""Per-customer predicted value, as the last scoring run of the workspace left it, and the workspace's
scoring settings (purchase model, horizon, discount rate)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, UTCDateTime


class CustomerScore(Base):
    """One row per scored customer (buyers as of the scoring run); replaced whole by each run."""

    __tablename__ = "customer_clv_score"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(16))  # bgnbd | pareto
    p_alive: Mapped[float] = mapped_column(Float)
    expected_purchases_90d: Mapped[float] = mapped_column(Float)
    clv_cents: Mapped[int] = mapped_column(BigInteger)  # discounted, over the run's horizon
    clv_percentile: Mapped[float] = mapped_column(Float)  # 0–100 among the workspace's scored customers
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClvSettings(Base):
    """How a workspace's daily scoring (and "score now") fits and discounts; defaults while it has none."""

    __tablename__ = "clv_settings"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(16))  # bgnbd | pareto
    horizon_months: Mapped[int] = mapped_column(Integer)
    monthly_discount_rate: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
