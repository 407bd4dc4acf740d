"""Per-customer RFM scores and layer, as the workspace's last RFM run left them, and the workspace's RFM
settings (window, scoring method, cut points, how layers split)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, JsonDoc, UTCDateTime


class CustomerRfm(Base):
    """One row per buyer of the run's window; replaced whole by each run."""

    __tablename__ = "customer_rfm"
    __table_args__ = (Index("ix_customer_rfm_ws_layer", "workspace_id", "layer"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    recency_days: Mapped[float] = mapped_column(
        Float
    )  # from the last purchase in the window to the run's `now`
    frequency: Mapped[int] = mapped_column(Integer)  # purchases in the window
    monetary_cents: Mapped[int] = mapped_column(BigInteger)  # net revenue in the window
    r: Mapped[int] = mapped_column(Integer)  # 1–5, 5 = most recent
    f: Mapped[int] = mapped_column(Integer)  # 1–5, 5 = most frequent
    m: Mapped[int] = mapped_column(Integer)  # 1–5, 5 = most spent
    layer: Mapped[str] = mapped_column(String(16))  # one of LAYERS
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RfmSettings(Base):
    """A workspace's RFM settings; the defaults of `rfm.service.RfmConfig` apply while it has none."""

    __tablename__ = "rfm_settings"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    window_days: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))  # quintile | threshold
    recency_cuts: Mapped[list[float]] = mapped_column(JsonDoc)  # four rising day counts
    frequency_cuts: Mapped[list[float]] = mapped_column(JsonDoc)  # four rising purchase counts
    monetary_cuts_yuan: Mapped[list[float]] = mapped_column(JsonDoc)  # four rising amounts in yuan
    layer_cut: Mapped[float | None] = mapped_column(Float)  # None: split at the buyers' mean score
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
