"""Per-customer RFM scores and layer, as the workspace's last RFM run left them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, UTCDateTime


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
