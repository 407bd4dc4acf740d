"""What every purchase or spend model shares: maximum-likelihood fitting on log-parameters with an
analytic gradient, over weighted rows (customers with the same history fitted as one), standard
errors from the Hessian, and a summary.

A model supplies its parameter names, a starting point and `_log_likelihood_terms`: per row, the log
likelihood and its gradient with respect to the (natural) parameters. Fitted attributes end in `_`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

import numpy as np
import polars as pl
from scipy import optimize

from siyu.core.errors import ValidationFailed


class FitFailed(ValidationFailed):
    """The optimiser did not converge to a finite optimum."""


class Fitter(ABC):
    """Base of the models: `fit(...)` then `params_`, `log_likelihood_`, `standard_errors_`."""

    param_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.params_: dict[str, float] = {}
        self.log_likelihood_: float = float("nan")
        self.iterations_: int = 0
        self._fitted_on: tuple[Any, np.ndarray] | None = None
        self._standard_errors: dict[str, float] | None = None
        self.start_: dict[str, float] = {}

    # --- what a model provides -------------------------------------------------------------------

    @abstractmethod
    def _log_likelihood_terms(self, params: np.ndarray, data: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per row: (log likelihood, shape (n,); gradient by natural parameter, shape (k, n))."""

    @abstractmethod
    def _start(self, data: Any) -> np.ndarray:
        """Natural parameters to start from."""

    #: optional: (params, data, weights) -> the weighted log likelihood's Hessian by natural parameter;
    #: a model that has it is fitted by Newton steps in a trust region instead of by L-BFGS
    _hessian: Any = None

    # --- fitting -----------------------------------------------------------------------------------

    def _total(self, params: np.ndarray, data: Any, weights: np.ndarray) -> tuple[float, np.ndarray]:
        values, gradients = self._log_likelihood_terms(params, data)
        return dot(weights, values), np.einsum("kn,n->k", gradients, weights)

    def _optimise(self, data: Any, weights: np.ndarray) -> None:
        total_weight = float(weights.sum())
        start = np.asarray(self._start(data), dtype=float)
        self.start_ = dict(zip(self.param_names, start.tolist(), strict=True))

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            with np.errstate(all="ignore"):  # a trial step may overflow: refused below
                params = np.exp(log_params)
                value, gradient = self._total(params, data, weights)
            if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
                # a step into a region where the likelihood underflows: refuse it, the line search
                # backs off (an infinite value, never a NaN that would end the search)
                return np.inf, np.zeros_like(log_params)
            # mean negative log likelihood, by log-parameter (chain rule: d/dlog p = p d/dp)
            return -value / total_weight, -(gradient * params) / total_weight

        hessian = self._hessian
        if hessian is None:
            result = optimize.minimize(
                objective,
                np.log(start),
                jac=True,
                method="L-BFGS-B",
                # tight enough that the parameters agree to ~1e-8 with a far tighter run (measured on
                # 1M customers), loose enough that the line search does not spin on rounding noise
                options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-8, "maxcor": 20},
            )
        else:

            def curvature(log_params: np.ndarray) -> np.ndarray:
                # by log-parameter: d²/dθi dθj = pi pj H_ij + δij pi g_i
                params = np.exp(log_params)
                with np.errstate(all="ignore"):
                    _, gradient = self._total(params, data, weights)
                    matrix = hessian(params, data, weights)
                matrix = np.outer(params, params) * matrix + np.diag(params * gradient)
                return -matrix / total_weight

            # Newton steps inside a trust region: a handful of evaluations where a quasi-Newton method
            # needs dozens, each of which touches every customer
            result = optimize.minimize(
                objective,
                np.log(start),
                jac=True,
                hess=curvature,
                method="trust-exact",
                options={"gtol": 1e-9},
            )
        params = np.exp(result.x)
        value, _ = self._total(params, data, weights)
        if not np.isfinite(value) or not np.all(np.isfinite(params)):
            raise FitFailed(
                f"{type(self).__name__} found no finite optimum ({result.message})",
                where="fit",
                hint="check the data: whole repeat counts, 0 ≤ recency ≤ T",
            )
        self.params_ = dict(zip(self.param_names, params.tolist(), strict=True))
        self.log_likelihood_ = value
        self.iterations_ = int(result.nit)
        self._fitted_on = (data, weights)
        self._standard_errors = None

    @property
    def standard_errors_(self) -> dict[str, float]:
        """Square roots of the diagonal of the inverse observed information (the Hessian of the
        negative log likelihood, by central differences of the analytic gradient); computed when first
        asked for, since it costs two likelihood evaluations per parameter."""
        if self._standard_errors is None:
            if self._fitted_on is None:
                return {}
            params = self._require_fitted()
            self._standard_errors = self._hessian_errors(params, *self._fitted_on)
        return self._standard_errors

    def _hessian_errors(self, params: np.ndarray, data: Any, weights: np.ndarray) -> dict[str, float]:
        k = len(params)
        hessian = np.empty((k, k))
        for i in range(k):
            step = 1e-5 * params[i]
            up, down = params.copy(), params.copy()
            up[i] += step
            down[i] -= step
            hessian[:, i] = -(self._total(up, data, weights)[1] - self._total(down, data, weights)[1]) / (
                2 * step
            )
        hessian = (hessian + hessian.T) / 2
        try:
            covariance = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            return dict.fromkeys(self.param_names, float("nan"))
        return dict(
            zip(self.param_names, np.sqrt(np.clip(np.diag(covariance), 0, None)).tolist(), strict=True)
        )

    def gradient_at_optimum(self, data: Any, weights: np.ndarray) -> np.ndarray:
        """The gradient of the mean log likelihood by log-parameter at `params_` (≈ 0 when converged)."""
        params = np.array([self.params_[name] for name in self.param_names])
        _, gradient = self._total(params, data, weights)
        return gradient * params / float(weights.sum())

    def summary(self) -> dict[str, Any]:
        """Parameters, standard errors, log likelihood and iterations, as a plain dict (JSON-ready)."""
        return {
            "model": type(self).__name__,
            "params": self.params_,
            "standard_errors": self.standard_errors_,
            "log_likelihood": self.log_likelihood_,
            "iterations": self.iterations_,
        }

    def _require_fitted(self) -> np.ndarray:
        if not self.params_:
            raise ValidationFailed(f"{type(self).__name__} is not fitted yet", hint="call fit() first")
        return np.array([self.params_[name] for name in self.param_names])

    def with_params(self, **params: float) -> Self:
        """This model with the given parameters, as if fitted (for predictions from known values)."""
        self.params_ = {name: float(params[name]) for name in self.param_names}
        self._fitted_on = None
        self._standard_errors = None
        return self


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """The dot product of two vectors, without BLAS threads: a threaded `a @ b` on 200k elements was 15×
    slower than this on a busy two-core machine (its threads wait for cores)."""
    return float(np.einsum("i,i->", a, b))


def log_add_exp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(exp(a) + exp(b)) without overflow; `np.logaddexp` was 20× slower than this form."""
    high = np.maximum(a, b)
    with np.errstate(invalid="ignore"):
        gap = -np.abs(a - b)
    return high + np.log1p(np.exp(np.where(np.isnan(gap), -np.inf, gap)))


def group_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of the given columns and how many times each occurs: customers with the same
    history are fitted as one weighted row (1M customers have some 100–200k distinct histories).

    The rows come sorted: a hash grouping returns them in a different order from run to run, so the
    likelihood's sums would add up in a different order, and on a flat likelihood the optimiser's path
    (and the fit, in the 4th decimal) would differ between two calls with the same data."""
    names = [f"c{i}" for i in range(len(columns))]
    grouped = pl.DataFrame(dict(zip(names, columns, strict=True))).group_by(names).agg(pl.len()).sort(names)
    return [grouped[name].to_numpy() for name in names], grouped["len"].to_numpy().astype(float)


def weighted_histories(
    frequency: Any, recency: Any, T: Any, weights: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked purchase histories as (x, t_x, T, weights): the distinct histories with their counts, or
    the rows as given when the caller brings its own weights."""
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    check_histories(x, t_x, big_t)
    if weights is not None:
        return x, t_x, big_t, np.asarray(weights, dtype=float)
    (x, t_x, big_t), counts = group_rows(x, t_x, big_t)
    return x, t_x, big_t, counts


def check_histories(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    """Refuse histories no purchase process can produce, naming the first bad row."""
    problems = [
        (frequency < 0, "frequency is negative"),
        (frequency != np.floor(frequency), "frequency is not a whole number"),
        (recency < 0, "recency is negative"),
        (recency > T + 1e-9, "recency is larger than T"),
        ((frequency == 0) & (recency != 0), "recency is not 0 for a customer without repeat purchases"),
        (~np.isfinite(frequency + recency + T), "a value is not finite"),
    ]
    for mask, what in problems:
        if np.any(mask):
            row = int(np.argmax(mask))
            raise ValidationFailed(
                f"{what} (frequency={frequency[row]}, recency={recency[row]}, T={T[row]})",
                where=f"row {row}",
                hint="frequency counts repeat purchases; 0 ≤ recency ≤ T",
            )
