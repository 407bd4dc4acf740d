"""The Gamma-Gamma model of spend (Fader, Hardie and Lee 2005, "RFM and CLV: using iso-value curves";
Colombo and Jiang 1999): a customer's transaction values are Gamma(p, ν) with ν ~ Gamma(q, γ) across
customers, independent of how often they buy. Fitted on repeat buyers' average repeat spend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from siyu.clv.fitters.base import Fitter, dot
from siyu.core.errors import ValidationFailed


@dataclass(frozen=True)
class _Spend:
    x: np.ndarray  # per customer: repeat purchases
    m: np.ndarray  # per customer: average repeat spend
    log_m: np.ndarray
    mx: np.ndarray  # m · x, the customer's total repeat spend
    # the distinct repeat counts, and what does not change during a fit: the weights per distinct x,
    # each customer's weight and weight · x, and the sums over customers that involve m alone
    distinct_x: np.ndarray
    weight_by_x: np.ndarray
    weights: np.ndarray
    weighted_x: np.ndarray
    sum_x_log_m: float
    sum_log_m: float

    @classmethod
    def of(cls, x: np.ndarray, m: np.ndarray, weights: np.ndarray) -> _Spend:
        distinct_x, x_index = np.unique(x, return_inverse=True)
        log_m = np.log(m)
        weighted_x = weights * x
        return cls(
            x=x,
            m=m,
            log_m=log_m,
            mx=m * x,
            distinct_x=distinct_x,
            weight_by_x=np.bincount(x_index, weights=weights, minlength=len(distinct_x)),
            weights=weights,
            weighted_x=weighted_x,
            sum_x_log_m=dot(weighted_x, log_m),
            sum_log_m=dot(weights, log_m),
        )


class GammaGammaFitter(Fitter):
    """`fit(frequency, monetary_value)` on customers with at least one repeat purchase; then
    `params_` = {p, q, gamma}."""

    param_names = ("p", "q", "gamma")

    def fit(
        self, frequency: np.ndarray, monetary_value: np.ndarray, weights: np.ndarray | None = None
    ) -> GammaGammaFitter:
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        bad = (x <= 0) | (m <= 0) | ~np.isfinite(x + m)
        if np.any(bad):
            row = int(np.argmax(bad))
            raise ValidationFailed(
                f"frequency {x[row]} and average spend {m[row]}: both must be positive",
                where=f"row {row}",
                hint="fit the spend model on repeat buyers only (frequency > 0)",
            )
        counts = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        data = _Spend.of(x, m, counts)
        self._optimise(data, counts)
        self._data_for_tests = data
        return self

    def _start(self, data: _Spend) -> np.ndarray:
        # moments: p from the spread of averages, γ/q from their level; then refined by the fit
        mean = float(np.mean(data.m))
        return np.array([1.0, 1.0, mean])

    def _log_likelihood_terms(self, params: np.ndarray, data: _Spend) -> tuple[np.ndarray, np.ndarray]:
        p, q, gamma = params
        x, m = data.x, data.m
        px = p * x
        log_gamma_mx = np.log(gamma + m * x)
        values = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1.0) * data.log_m
            + px * np.log(x)
            - (px + q) * log_gamma_mx
        )
        gradient = np.empty((3, len(x)))
        gradient[0] = x * (digamma(px + q) - digamma(px) + data.log_m + np.log(x) - log_gamma_mx)
        gradient[1] = digamma(px + q) - digamma(q) + np.log(gamma) - log_gamma_mx
        gradient[2] = q / gamma - (px + q) / (gamma + m * x)
        return values, gradient

    def _total(self, params: np.ndarray, data: _Spend, weights: np.ndarray) -> tuple[float, np.ndarray]:
        # The per-customer sum, regrouped: the log-gamma and digamma terms depend on x alone, so they
        # are evaluated once per distinct x; only the terms in γ + m·x need every customer. `weights`
        # are the ones `data` was built with (its sums include them).
        p, q, gamma = params
        dx, w_by_x = data.distinct_x, data.weight_by_x
        pdx = p * dx
        log_gamma_mx = np.log(gamma + data.mx)
        inverse_gamma_mx = 1.0 / (gamma + data.mx)
        by_x_terms = gammaln(pdx + q) - gammaln(pdx) - gammaln(q) + q * np.log(gamma) + pdx * np.log(dx)
        x_log_gmx, log_gmx = dot(data.weighted_x, log_gamma_mx), dot(data.weights, log_gamma_mx)
        value = dot(w_by_x, by_x_terms) + p * data.sum_x_log_m - data.sum_log_m - p * x_log_gmx - q * log_gmx
        psi_sum = digamma(pdx + q)
        gradient = np.array(
            [
                dot(w_by_x * dx, psi_sum - digamma(pdx) + np.log(dx)) + data.sum_x_log_m - x_log_gmx,
                dot(w_by_x, psi_sum - digamma(q) + np.log(gamma)) - log_gmx,
                q / gamma * w_by_x.sum()
                - p * dot(data.weighted_x, inverse_gamma_mx)
                - q * dot(data.weights, inverse_gamma_mx),
            ]
        )
        return value, gradient

    def _hessian(self, params: np.ndarray, data: _Spend, weights: np.ndarray) -> np.ndarray:
        p, q, gamma = params
        dx, w_by_x = data.distinct_x, data.weight_by_x
        pdx = p * dx
        trigamma_sum = polygamma(1, pdx + q)
        inverse = 1.0 / (gamma + data.mx)
        inverse_squared = inverse * inverse
        wx_inverse, w_inverse = dot(data.weighted_x, inverse), dot(data.weights, inverse)
        pp = dot(w_by_x * dx * dx, trigamma_sum - polygamma(1, pdx))
        pq = dot(w_by_x * dx, trigamma_sum)
        qq = dot(w_by_x, trigamma_sum - polygamma(1, q))
        total = w_by_x.sum()
        p_gamma = -wx_inverse
        q_gamma = total / gamma - w_inverse
        gamma_gamma = (
            -q * total / gamma**2
            + p * dot(data.weighted_x, inverse_squared)
            + q * dot(data.weights, inverse_squared)
        )
        return np.array([[pp, pq, p_gamma], [pq, qq, q_gamma], [p_gamma, q_gamma, gamma_gamma]])

    def conditional_expected_spend(self, frequency: np.ndarray, monetary_value: np.ndarray) -> np.ndarray:
        """E[spend per transaction | x, m̄], per customer; the population mean for x = 0."""
        p, q, gamma = self._require_fitted()
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        population_mean = p * gamma / (q - 1.0)
        weight = p * x / (p * x + q - 1.0)
        return np.where(x > 0, (1.0 - weight) * population_mean + weight * m, population_mean)
