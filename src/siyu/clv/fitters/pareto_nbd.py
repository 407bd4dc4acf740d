"""The Pareto/NBD model (Schmittlein, Morrison and Colombo 1987): while alive a customer buys at rate
λ ~ Gamma(r, α) and stays alive for an exponential lifetime of rate μ ~ Gamma(s, β).

The likelihood of (x, t_x, T) is C·[(α+T)^-(r+x) (β+T)^-s + s·I], with C = Γ(r+x) α^r β^s / Γ(r) and
I = ∫ from t_x to T of (α+y)^-(r+x) (β+y)^-(s+1) dy — the integral the usual closed form writes with
Gauss's hypergeometric function. siyu evaluates I and its derivatives by Gauss-Legendre quadrature
in z = ln((α+y)/(α+t_x)), where the integrand is e^(-k·z) times a bounded smooth function (k = r+s+x),
on two panels: up to where e^(-k·z) has fallen by e^-16, and beyond it after the substitution
w = 1 - e^(-k·z), which absorbs the steep decay of thousands of purchases. The value and the analytic
gradient come from the same nodes, so the optimiser sees a consistent pair. The closed
form is kept to check the quadrature (`closed_form_log_likelihood`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln, hyp2f1

from siyu.clv.fitters.base import Fitter, dot, log_add_exp, weighted_histories

# Where the integrand's decay e^(-k·z) has fallen by e^-16, the first panel (in z) ends and the second
# (in w) begins: on the first, e^(-k·z)·g(z) is smooth and mild enough for 20-point Gauss-Legendre
# (error ~1e-12); on the second, the substitution absorbs the decay and what is left carries less than
# e^-16 of the mass, so four nodes are plenty and its weak endpoint singularity costs nothing measurable.
_FIRST_NODES, _FIRST_WEIGHTS = np.polynomial.legendre.leggauss(20)
_SECOND_NODES, _SECOND_WEIGHTS = np.polynomial.legendre.leggauss(4)
_FIRST_PANEL_DECAY = 16.0
_BLOCK = 4096


@dataclass(frozen=True)
class _Histories:
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    distinct_x: np.ndarray
    x_index: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> _Histories:
        distinct_x, x_index = np.unique(x, return_inverse=True)
        return cls(x, t_x, T, distinct_x, x_index)


class ParetoNBDFitter(Fitter):
    """`fit(frequency, recency, T)`, then `params_` = {r, alpha, s, beta}."""

    param_names = ("r", "alpha", "s", "beta")

    def fit(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None
    ) -> ParetoNBDFitter:
        x, t_x, big_t, counts = weighted_histories(frequency, recency, T, weights)
        self._optimise(_Histories.of(x, t_x, big_t), counts)
        return self

    def _start(self, data: _Histories) -> np.ndarray:
        rate = max(float(data.x.mean() / max(data.T.mean(), 1e-9)), 1e-3)
        return np.array([1.0, 1.0 / rate, 1.0, float(data.T.mean())])

    def _parts(self, params: np.ndarray, data: _Histories) -> dict[str, np.ndarray]:
        """Per row: the log of each of the likelihood's two terms and their gradients' pieces."""
        r, alpha, s, beta = params
        x, t_x, T = data.x, data.t_x, data.T
        k = r + s + x
        log_a = np.log(alpha + t_x)
        log_alpha_T = np.log(alpha + T)
        log_beta_T = np.log(beta + T)
        # z = ln((α+y)/(α+t_x)) runs over [0, Z]; I = (α+t_x)^-k ∫ e^(-k·z) ρ^(s+1) dz
        big_z = log_alpha_T - log_a
        z1 = np.minimum(big_z, _FIRST_PANEL_DECAY / k)
        with np.errstate(divide="ignore"):
            z_first = (z1 / 2.0)[:, None] * (1.0 + _FIRST_NODES[None, :])
            log_weight_first = np.log((z1 / 2.0)[:, None] * _FIRST_WEIGHTS[None, :]) - k[:, None] * z_first
            w1 = -np.expm1(-k * z1)
            big_w = -np.expm1(-k * big_z)
            span = (big_w - w1) / 2.0
            w = w1[:, None] + span[:, None] * (1.0 + _SECOND_NODES[None, :])
            z_second = -np.log1p(-w) / k[:, None]
            log_weight_second = np.log((span / k)[:, None] * _SECOND_WEIGHTS[None, :])
        z = np.concatenate([z_first, z_second], axis=1)
        log_alpha_y = log_a[:, None] + z
        inverse_alpha_y = np.exp(-log_alpha_y)
        log_rho = -np.log1p((beta - alpha) * inverse_alpha_y)  # ρ = (α+y)/(β+y)
        # ∫ e^(-k·z) ρ^(s+1) dz in logs (ρ^(s+1) overflows for a large s with α > β), and the nodes'
        # shares of it, for the derivatives
        log_terms = (s + 1.0) * log_rho + np.concatenate([log_weight_first, log_weight_second], axis=1)
        top = log_terms.max(axis=1)
        top = np.where(np.isfinite(top), top, 0.0)
        g = np.exp(log_terms - top[:, None])
        total_g = g.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_integral = top + np.log(total_g)
            share = np.where(total_g > 0, 1.0 / total_g, 0.0)
        mean_log_alpha_y = (g * log_alpha_y).sum(axis=1) * share
        mean_inverse_alpha_y = (g * inverse_alpha_y).sum(axis=1) * share
        mean_log_beta_y = mean_log_alpha_y - (g * log_rho).sum(axis=1) * share
        mean_inverse_beta_y = (g * (inverse_alpha_y * np.exp(log_rho))).sum(axis=1) * share
        log_alive = -(r + x) * log_alpha_T - s * log_beta_T
        log_dropped = np.log(s) - k * log_a + log_integral
        return {
            "log_alive": log_alive,
            "log_dropped": log_dropped,
            "log_alpha_T": log_alpha_T,
            "log_beta_T": log_beta_T,
            "mean_log_alpha_y": mean_log_alpha_y,
            "mean_inverse_alpha_y": mean_inverse_alpha_y,
            "mean_log_beta_y": mean_log_beta_y,
            "mean_inverse_beta_y": mean_inverse_beta_y,
        }

    def _log_likelihood_terms(self, params: np.ndarray, data: _Histories) -> tuple[np.ndarray, np.ndarray]:
        r, alpha, s, beta = params
        x, T = data.x, data.T
        part = self._parts(params, data)
        total = log_add_exp(part["log_alive"], part["log_dropped"])
        alive = np.exp(part["log_alive"] - total)
        dropped = 1.0 - alive
        log_c = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        gradient = np.empty((4, len(x)))
        gradient[0] = (
            digamma(r + x)
            - digamma(r)
            + np.log(alpha)
            - alive * part["log_alpha_T"]
            - dropped * part["mean_log_alpha_y"]
        )
        gradient[1] = r / alpha - (r + x) * (alive / (alpha + T) + dropped * part["mean_inverse_alpha_y"])
        gradient[2] = (
            np.log(beta) - alive * part["log_beta_T"] + dropped * (1.0 / s - part["mean_log_beta_y"])
        )
        gradient[3] = s / beta - alive * s / (beta + T) - dropped * (s + 1.0) * part["mean_inverse_beta_y"]
        return log_c + total, gradient

    def _total(self, params: np.ndarray, data: _Histories, weights: np.ndarray) -> tuple[float, np.ndarray]:
        # in blocks of rows: the quadrature's (rows × nodes) temporaries then stay in the CPU's cache
        # instead of streaming hundreds of megabytes through memory on every evaluation
        value, gradient = 0.0, np.zeros(4)
        for start in range(0, len(data.x), _BLOCK):
            block = slice(start, start + _BLOCK)
            part = _Histories(
                data.x[block], data.t_x[block], data.T[block], data.distinct_x, data.x_index[block]
            )
            values, gradients = self._log_likelihood_terms(params, part)
            value += dot(weights[block], values)
            gradient += np.einsum("kn,n->k", gradients, weights[block])
        return value, gradient

    # --- checks and predictions -----------------------------------------------------------------

    def closed_form_log_likelihood(
        self, params: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Per customer, the log likelihood by the hypergeometric closed form (Fader and Hardie 2005,
        "A note on deriving the Pareto/NBD model and related expressions"), to check the quadrature."""
        r, alpha, s, beta = params
        x, t_x, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        a = r + s + x
        if alpha >= beta:
            b, rate, z_of = s + 1.0, alpha, lambda t: (alpha - beta) / (alpha + t)
        else:
            b, rate, z_of = r + x, beta, lambda t: (beta - alpha) / (beta + t)
        a0 = (
            hyp2f1(a, b, a + 1.0, z_of(t_x)) / (rate + t_x) ** a
            - hyp2f1(a, b, a + 1.0, z_of(big_t)) / (rate + big_t) ** a
        )
        alive = 1.0 / ((alpha + big_t) ** (r + x) * (beta + big_t) ** s)
        log_c = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        return np.asarray(log_c + np.log(alive + s / a * a0))

    def probability_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive at T | history): the share of the likelihood from a lifetime that outlasts T."""
        params = self._require_fitted()
        data = _Histories.of(*(np.asarray(v, dtype=float) for v in (frequency, recency, T)))
        part = self._parts(params, data)
        return np.exp(part["log_alive"] - log_add_exp(part["log_alive"], part["log_dropped"]))

    def expected_purchases(
        self, t: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """E[purchases in (T, T + t] | history] (Schmittlein, Morrison and Colombo 1987)."""
        r, alpha, s, beta = self._require_fitted()
        x, big_t = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
        alive = self.probability_alive(frequency, recency, T)
        # (β+T)/(s-1) · [1 - ((β+T)/(β+T+t))^(s-1)]: the expected time alive in (T, T+t], written so
        # that s → 1 stays finite
        log_ratio = np.log(beta + big_t) - np.log(beta + big_t + t)
        time_alive = (beta + big_t) * np.where(
            abs(s - 1.0) > 1e-9, -np.expm1((s - 1.0) * log_ratio) / (s - 1.0), -log_ratio
        )
        return alive * (r + x) / (alpha + big_t) * time_alive
