"""What the fitted models say about customers: expected lifetime value over a horizon with a discount
rate, and the calibration/holdout check that shows whether a purchase model predicts well."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siyu.clv.fitters.bgnbd import BetaGeoFitter
from siyu.clv.fitters.gamma_gamma import GammaGammaFitter
from siyu.clv.summary import PurchaseHistories
from siyu.core.errors import ValidationFailed


def customer_lifetime_value(
    purchases: BetaGeoFitter,
    spend: GammaGammaFitter,
    histories: PurchaseHistories,
    *,
    periods: int = 12,
    period_length: float = 30.0 / 7.0,
    discount_rate: float = 0.01,
) -> np.ndarray:
    """Discounted expected value per customer over `periods` periods of `period_length` model units
    (default: 12 months of 30 days, in weeks), at `discount_rate` per period: for each period, the
    purchases expected in it times the expected spend per purchase, discounted to today."""
    if periods < 1 or period_length <= 0:
        raise ValidationFailed("the horizon must be at least one period of positive length", where="periods")
    if not 0 <= discount_rate < 1:
        raise ValidationFailed(
            f"discount rate {discount_rate} per period is out of range",
            where="discount_rate",
            hint="e.g. 0.01",
        )
    h = histories
    spend_per_purchase = spend.conditional_expected_spend(h.frequency, h.monetary_value)
    value = np.zeros(len(h))
    previous = np.zeros(len(h))
    for i in range(1, periods + 1):
        cumulative = purchases.expected_purchases(i * period_length, h.frequency, h.recency, h.T)
        value += (cumulative - previous) * spend_per_purchase / (1.0 + discount_rate) ** i
        previous = cumulative
    return value


@dataclass(frozen=True)
class CalibrationBucket:
    frequency: str  # "0" … "6", "7+"
    customers: int
    actual: float  # mean purchases in the holdout
    predicted: float  # mean expected purchases in the holdout


def calibration_holdout(
    purchases: BetaGeoFitter, histories: PurchaseHistories, *, top_bucket: int = 7
) -> list[CalibrationBucket]:
    """Actual against predicted holdout purchases, by calibration frequency (the check of FHL 2005,
    figure 3). Needs histories summarised with an observation end."""
    h = histories
    if h.holdout_frequency is None or h.holdout_length is None:
        raise ValidationFailed(
            "these histories have no holdout period",
            hint="summarise with observation_end after calibration_end",
        )
    predicted = purchases.expected_purchases(h.holdout_length, h.frequency, h.recency, h.T)
    buckets = []
    for k in range(top_bucket + 1):
        mask = h.frequency >= k if k == top_bucket else h.frequency == k
        if not mask.any():
            continue
        buckets.append(
            CalibrationBucket(
                frequency=f"{k}+" if k == top_bucket else str(k),
                customers=int(mask.sum()),
                actual=float(h.holdout_frequency[mask].mean()),
                predicted=float(predicted[mask].mean()),
            )
        )
    return buckets
