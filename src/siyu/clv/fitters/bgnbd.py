"""The BG/NBD model (Fader, Hardie and Lee 2005, "Counting your customers the easy way") and its
modified form MBG/NBD (Batislam, Denizel and Filiztekin 2007), where a customer may also drop out
right after the first purchase.

While alive, a customer buys at rate λ ~ Gamma(r, α); after each purchase (BG/NBD: each repeat
purchase; MBG/NBD: each purchase, the first included) they drop out with probability p ~ Beta(a, b).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv, digamma, gammaln, hyp2f1

from siyu.clv.fitters.base import Fitter, dot, log_add_exp, weighted_histories


@dataclass(frozen=True)
class _Histories:
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    repeat: np.ndarray  # x > 0
    # the distinct purchase counts and each row's index among them: the log-gamma and digamma terms
    # depend on x alone and are evaluated once per distinct x
    distinct_x: np.ndarray
    x_index: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> _Histories:
        distinct_x, x_index = np.unique(x, return_inverse=True)
        return cls(x, t_x, T, x > 0, distinct_x, x_index)


class BetaGeoFitter(Fitter):
    """BG/NBD: `fit(frequency, recency, T)`, then `params_` = {r, alpha, a, b}."""

    param_names = ("r", "alpha", "a", "b")
    #: MBG/NBD shifts the dropout process by one purchase (see the module docstring)
    modified = False

    def fit(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None
    ) -> BetaGeoFitter:
        """Fit by maximum likelihood; customers with the same (frequency, recency, T) count once with
        their number as weight."""
        x, t_x, big_t, counts = weighted_histories(frequency, recency, T, weights)
        self._optimise(_Histories.of(x, t_x, big_t), counts)
        return self

    def _start(self, data: _Histories) -> np.ndarray:
        # rate: repeat purchases per unit of time observed; the rest at 1
        rate = max(float(data.x.mean() / max(data.T.mean(), 1e-9)), 1e-3)
        return np.array([1.0, 1.0 / rate, 1.0, 1.0])

    def _log_likelihood_terms(self, params: np.ndarray, data: _Histories) -> tuple[np.ndarray, np.ndarray]:
        r, alpha, a, b = params
        x, t_x, T = data.x, data.t_x, data.T
        shift = 1.0 if self.modified else 0.0
        log_alpha_T = np.log(alpha + T)
        log_alpha_t = np.log(alpha + t_x)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x + shift) - gammaln(b) - gammaln(a + b + x + shift)
        a3 = -(r + x) * log_alpha_T
        # the customer dropped out right after the last purchase: for BG/NBD only after a repeat one
        drop_base = b + x - 1.0 + shift
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.log(a) - np.log(drop_base) - (r + x) * log_alpha_t
        if not self.modified:
            a4 = np.where(data.repeat, a4, -np.inf)
        total = log_add_exp(a3, a4)
        alive_share = np.exp(a3 - total)  # share of the likelihood from "still alive at T"
        dropped_share = 1.0 - alive_share
        common_ab = digamma(a + b) - digamma(a + b + x + shift)
        gradient = np.empty((4, len(x)))
        gradient[0] = (
            digamma(r + x)
            - digamma(r)
            + np.log(alpha)
            - alive_share * log_alpha_T
            - dropped_share * log_alpha_t
        )
        gradient[1] = r / alpha - (r + x) * (alive_share / (alpha + T) + dropped_share / (alpha + t_x))
        gradient[2] = common_ab + dropped_share / a
        with np.errstate(divide="ignore", invalid="ignore"):
            drop_term = np.where(dropped_share > 0, dropped_share / drop_base, 0.0)
        gradient[3] = common_ab + digamma(b + x + shift) - digamma(b) - drop_term
        return a1 + a2 + total, gradient

    def _total(self, params: np.ndarray, data: _Histories, weights: np.ndarray) -> tuple[float, np.ndarray]:
        # `_log_likelihood_terms` summed with the weights, with every term that depends on x alone
        # evaluated once per distinct x (a few hundred values) instead of once per row
        r, alpha, a, b = params
        shift = 1.0 if self.modified else 0.0
        dx, index = data.distinct_x, data.x_index
        weight_by_x = np.bincount(index, weights=weights, minlength=len(dx))
        log_alpha_T = np.log(alpha + data.T)
        log_alpha_t = np.log(alpha + data.t_x)
        by_x = (
            gammaln(r + dx)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + dx + shift)
            - gammaln(b)
            - gammaln(a + b + dx + shift)
        )
        drop_base_x = b + dx - 1.0 + shift
        with np.errstate(divide="ignore", invalid="ignore"):
            log_drop_x = np.log(a) - np.log(drop_base_x)
            if not self.modified:
                log_drop_x = np.where(dx > 0, log_drop_x, -np.inf)
        r_x = r + data.x
        a3 = -r_x * log_alpha_T
        a4 = log_drop_x[index] - r_x * log_alpha_t
        total = log_add_exp(a3, a4)
        alive = np.exp(a3 - total)
        dropped = 1.0 - alive
        w_alive, w_dropped = weights * alive, weights * dropped
        psi_r = digamma(r + dx) - digamma(r)
        common_ab = digamma(a + b) - digamma(a + b + dx + shift)
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse_drop_x = np.where(np.isfinite(log_drop_x), 1.0 / drop_base_x, 0.0)
        value = dot(weight_by_x, by_x) + dot(weights, total)
        gradient = np.array(
            [
                dot(weight_by_x, psi_r + np.log(alpha))
                - dot(w_alive, log_alpha_T)
                - dot(w_dropped, log_alpha_t),
                weight_by_x.sum() * r / alpha
                - dot(w_alive * r_x, 1.0 / (alpha + data.T))
                - dot(w_dropped * r_x, 1.0 / (alpha + data.t_x)),
                dot(weight_by_x, common_ab) + w_dropped.sum() / a,
                dot(weight_by_x, common_ab + digamma(b + dx + shift) - digamma(b))
                - dot(np.bincount(index, weights=w_dropped, minlength=len(dx)), inverse_drop_x),
            ]
        )
        return float(value), gradient

    # --- predictions -------------------------------------------------------------------------------

    def _odds_dropped(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = self._require_fitted()
        shift = 1.0 if self.modified else 0.0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_odds = (
                np.log(a) - np.log(b + x - 1.0 + shift) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            )
        if not self.modified:
            log_odds = np.where(x > 0, log_odds, -np.inf)
        return log_odds

    def probability_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive at T | history), per customer."""
        x, t_x, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        # 1 / (1 + odds), computed from the log odds so that extreme histories stay finite
        log_odds = self._odds_dropped(x, t_x, big_t)
        return np.exp(-log_add_exp(np.zeros_like(log_odds), log_odds))

    def expected_purchases(
        self, t: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """E[purchases in (T, T + t] | history], per customer (FHL 2005, eq. 10)."""
        r, alpha, a, b = self._require_fitted()
        x, t_x, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        shift = 1.0 if self.modified else 0.0
        z = t / (alpha + big_t + t)
        c = a + b + x - 1.0 + shift
        # ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x+shift; c; z), by Euler's transformation: the same value
        # without the 0 · ∞ that the direct form reaches for customers with thousands of purchases
        with np.errstate(all="ignore"):
            tail = (1.0 - z) ** (a - 1.0) * hyp2f1(c - r - x, a - 1.0, c, z)
        broken = ~np.isfinite(tail)
        if np.any(broken) and min(a, b) >= _HOMOGENEOUS_DROPOUT:
            # a and b so large that the dropout probability is one number p for everyone (a fit on
            # customers who all look alike ends there): the model's limit is exact to O(1/(a+b)) and
            # closed-form, E = (1/p)·(1 − ((α+T)/(α+T+p·t))^(r+x)); the quadrature below loses all
            # precision there, its exponents cancelling at 1e5 and more.
            p = np.broadcast_to((a - 1.0) / c, x.shape)
            alpha_t = alpha + np.broadcast_to(big_t, x.shape)
            tail[broken] = np.exp(
                (r + x[broken]) * (np.log(alpha_t[broken]) - np.log(alpha_t[broken] + p[broken] * t))
            )
            broken = ~np.isfinite(tail)
        with np.errstate(all="ignore"):
            conditional = np.array(np.broadcast_to(c / (a - 1.0) * (1.0 - tail), x.shape), dtype=float)
        # given alive, no more than the mean purchase rate times t: a value outside [0, that] is the
        # series losing its precision, as is a non-finite one (hundreds of purchases with b in the
        # hundreds; a fit of people who all buy at one rate): integrate over the dropout probability
        bound = (r + x) / (alpha + big_t) * t
        redo = ~((conditional >= 0.0) & (conditional <= bound * (1.0 + 1e-9)))
        if np.any(redo):
            pairs, inverse = np.unique(
                np.column_stack((x[redo], np.broadcast_to(big_t, x.shape)[redo])), axis=0, return_inverse=True
            )
            by_pair = _conditional_by_quadrature(r, alpha, a, b + shift, pairs[:, 0], pairs[:, 1], t)
            conditional[redo] = by_pair[inverse.ravel()]
        return conditional * self.probability_alive(x, t_x, big_t)

    def expected_purchases_new_customer(self, t: float) -> float:
        """E[purchases in (0, t]] for a customer just acquired (FHL 2005, eq. 9)."""
        r, alpha, a, b = self._require_fitted()
        z = t / (alpha + t)
        return float(
            (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1.0, z))
        )


_HOMOGENEOUS_DROPOUT = 1e4  # a and b beyond this: the dropout probability no longer varies between customers


# panels of the quadrature over the quantiles of the dropout probability's posterior, narrowing toward
# the upper tail, where the quantile function is steep (a ≪ 1): [0, 0.9], [0.9, 0.99], … up to 1 − 1e-12
_PANEL_EDGES = np.concatenate(([0.0], 1.0 - 10.0 ** -np.arange(1, 13)))
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(24)


def _conditional_by_quadrature(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, T: np.ndarray, t: float
) -> np.ndarray:
    """E[purchases in (T, T + t] | x purchases, alive at T], for any a, b > 0, from its definition.

    Given alive, λ ~ Gamma(r + x, α + T) and p ~ Beta(a, b + x), independent, and a customer with λ and p
    buys (1 − e^(−λpt)) / p times in t; the mean over λ is (1 − ((α+T)/(α+T+pt))^(r+x)) / p, bounded by
    the mean rate times t, so the mean over p is finite even where the closed form (c / (a − 1)) is not.
    Gauss-Legendre over the Beta posterior's quantiles, in panels: within about 1e-8 of mpmath.
    """
    low, high = _PANEL_EDGES[:-1, None], _PANEL_EDGES[1:, None]
    quantiles = (low + (high - low) * (_NODES + 1.0) / 2.0).ravel()
    weights = ((high - low) * _WEIGHTS / 2.0).ravel()
    p = betaincinv(a, (b + x)[:, None], quantiles[None, :])
    shape, scale = (r + x)[:, None], (alpha + T)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_p = -np.expm1(-shape * np.log1p(p * t / scale)) / p
    per_p = np.where(p > 0.0, per_p, shape * t / scale)  # p → 0: the customer never drops out
    return per_p @ weights


class ModifiedBetaGeoFitter(BetaGeoFitter):
    """MBG/NBD: as BG/NBD, with a chance to drop out after the first purchase too."""

    modified = True
