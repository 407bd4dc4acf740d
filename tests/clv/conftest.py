"""The CDNOW sample (2,357 customers, Q1 1997 cohort; see shared/data/cdnow) summarised as in the papers:
39-week calibration period, time in weeks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from siyu.clv.summary import PurchaseHistories, read_transactions, summarise

CDNOW = Path(__file__).parent / "data" / "cdnow_sample.txt"


@pytest.fixture(scope="session")
def cdnow() -> PurchaseHistories:
    return summarise(
        read_transactions(str(CDNOW)), calibration_end=date(1997, 9, 30), observation_end=date(1998, 6, 30)
    )
