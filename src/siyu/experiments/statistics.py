"""The statistics of A/B tests: stable assignment of customers to variants, frequentist tests with
confidence intervals, a Bayesian chance to beat, the sample-ratio-mismatch check, corrections for
several comparisons, and always-valid p-values for looking early (mSPRT).

Plain functions of counts and moments, so that broadcasts, journeys and the analyst's page share
one implementation; what is stored (experiments, exposures) lives in the service.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import integrate, stats

from siyu.core.errors import ValidationFailed

HASH_SCALE = float(2**64)


# --- assignment ----------------------------------------------------------------------------------


def assignment_point(experiment_key: str, customer_id: int | str) -> float:
    """A customer's point in [0, 1) for an experiment: the same on every run and machine (BLAKE2b of
    the key and the id), independent between experiments with different keys."""
    digest = hashlib.blake2b(f"{experiment_key}\x1f{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / HASH_SCALE


def assign_variant(
    experiment_key: str, customer_id: int | str, weights: dict[str, float], *, holdout: float = 0.0
) -> str | None:
    """The variant of `weights` (name → relative weight) this customer is in, or None when the
    customer falls in the holdout share (reached by none of the variants)."""
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValidationFailed("variant weights must be non-negative and not all zero", where="weights")
    if not 0 <= holdout < 1:
        raise ValidationFailed(f"holdout {holdout} is not a share in [0, 1)", where="holdout")
    point = assignment_point(experiment_key, customer_id)
    if point < holdout:
        return None
    position = (point - holdout) / (1 - holdout) * sum(weights.values())
    cumulative = 0.0
    for name, weight in weights.items():
        cumulative += weight
        if position < cumulative:
            return name
    return list(weights)[-1]


# --- frequentist tests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Variant B against A: the difference B − A with its confidence interval, the relative lift and
    the two-sided p-value of "no difference"."""

    difference: float
    ci_low: float
    ci_high: float
    relative_lift: float | None
    statistic: float
    p_value: float
    confidence: float


def _check_counts(successes: int, trials: int, where: str) -> None:
    if trials <= 0 or successes < 0 or successes > trials:
        raise ValidationFailed(
            f"{successes} successes of {trials} trials is not a proportion",
            where=where,
            hint="0 ≤ successes ≤ trials, trials > 0",
        )


def two_proportion_test(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, *, confidence: float = 0.95
) -> Comparison:
    """Two-proportion z-test (pooled standard error, as statsmodels' `proportions_ztest`) with a Wald
    interval for the difference (unpooled standard error)."""
    _check_counts(successes_a, trials_a, "variant A")
    _check_counts(successes_b, trials_b, "variant B")
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    difference = p_b - p_a
    z = difference / pooled_se if pooled_se > 0 else 0.0
    se = math.sqrt(p_a * (1 - p_a) / trials_a + p_b * (1 - p_b) / trials_b)
    critical = float(stats.norm.ppf(0.5 + confidence / 2))
    return Comparison(
        difference=difference,
        ci_low=difference - critical * se,
        ci_high=difference + critical * se,
        relative_lift=difference / p_a if p_a > 0 else None,
        statistic=z,
        p_value=float(2 * stats.norm.sf(abs(z))),
        confidence=confidence,
    )


def welch_test(
    mean_a: float,
    variance_a: float,
    n_a: int,
    mean_b: float,
    variance_b: float,
    n_b: int,
    *,
    confidence: float = 0.95,
) -> Comparison:
    """Welch's t-test for a difference of means (revenue per customer), from each arm's mean, sample
    variance (ddof 1) and size, with the Welch–Satterthwaite degrees of freedom."""
    if n_a < 2 or n_b < 2:
        raise ValidationFailed("each variant needs at least two customers for a t-test", where="n")
    standard_error_sq = variance_a / n_a + variance_b / n_b
    difference = mean_b - mean_a
    if standard_error_sq <= 0:
        raise ValidationFailed("both variants have zero variance: nothing to test", where="variance")
    dof = standard_error_sq**2 / ((variance_a / n_a) ** 2 / (n_a - 1) + (variance_b / n_b) ** 2 / (n_b - 1))
    se = math.sqrt(standard_error_sq)
    t = difference / se
    critical = float(stats.t.ppf(0.5 + confidence / 2, dof))
    return Comparison(
        difference=difference,
        ci_low=difference - critical * se,
        ci_high=difference + critical * se,
        relative_lift=difference / mean_a if mean_a != 0 else None,
        statistic=t,
        p_value=float(2 * stats.t.sf(abs(t), dof)),
        confidence=confidence,
    )


def welch_test_of_samples(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95) -> Comparison:
    """`welch_test` from the two samples themselves."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return welch_test(
        float(x.mean()),
        float(x.var(ddof=1)),
        len(x),
        float(y.mean()),
        float(y.var(ddof=1)),
        len(y),
        confidence=confidence,
    )


# --- Bayesian ------------------------------------------------------------------------------------


def chance_to_beat(
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
) -> float:
    """P(rate of B > rate of A) under independent Beta posteriors (uniform prior by default), by
    numerical integration of P(A < x)·density_B(x) — exact to the integrator's precision, no sampling."""
    _check_counts(successes_a, trials_a, "variant A")
    _check_counts(successes_b, trials_b, "variant B")
    a = stats.beta(prior[0] + successes_a, prior[1] + trials_a - successes_a)
    b = stats.beta(prior[0] + successes_b, prior[1] + trials_b - successes_b)
    # integrate where B's posterior has its mass, so that a narrow posterior is not stepped over
    low, high = b.ppf(1e-12), b.isf(1e-12)
    value, _ = integrate.quad(lambda x: a.cdf(x) * b.pdf(x), low, high, limit=200, epsabs=1e-12, epsrel=1e-10)
    return float(min(max(value, 0.0), 1.0))


# --- checks and corrections ----------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRatioCheck:
    statistic: float
    p_value: float
    mismatch: bool  # p below the threshold: the split is broken, do not trust the results


def sample_ratio_mismatch(
    observed: Sequence[int], expected_shares: Sequence[float], *, threshold: float = 0.001
) -> SampleRatioCheck:
    """Pearson's chi-square test of the observed counts per variant against the planned shares."""
    counts = np.asarray(observed, dtype=float)
    shares = np.asarray(expected_shares, dtype=float)
    if len(counts) != len(shares) or len(counts) < 2:
        raise ValidationFailed("give one planned share per variant, at least two", where="expected_shares")
    if np.any(shares <= 0) or counts.sum() <= 0:
        raise ValidationFailed(
            "planned shares must be positive and some customers observed", where="expected_shares"
        )
    expected = shares / shares.sum() * counts.sum()
    statistic, p_value = stats.chisquare(counts, expected)
    return SampleRatioCheck(float(statistic), float(p_value), bool(p_value < threshold))


def adjust_p_values(p_values: Sequence[float], *, method: str = "holm") -> list[float]:
    """p-values adjusted for several comparisons: "bonferroni", "holm" (family-wise error) or "bh"
    (Benjamini–Hochberg, false discovery rate); the same numbers as statsmodels' `multipletests`."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    if np.any((p < 0) | (p > 1)):
        raise ValidationFailed("p-values must lie in [0, 1]", where="p_values")
    order = np.argsort(p)
    ranked = p[order]
    if method == "bonferroni":
        adjusted_sorted = np.minimum(ranked * m, 1.0)
    elif method == "holm":
        adjusted_sorted = np.minimum(np.maximum.accumulate(ranked * (m - np.arange(m))), 1.0)
    elif method == "bh":
        scaled = ranked * m / np.arange(1, m + 1)
        adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    else:
        raise ValidationFailed(
            f"unknown correction {method!r}", where="method", hint="bonferroni, holm or bh"
        )
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


# --- looking early -------------------------------------------------------------------------------


def always_valid_p_value(
    difference: float, variance_of_difference: float, *, mixing_variance: float, previous: float = 1.0
) -> float:
    """The always-valid p-value of the mixture sequential probability ratio test (Johari, Pekelis and
    Walsh 2017) for H0: difference = 0, with a normal mixture of variance `mixing_variance` (τ²) over
    the alternative: p = min(previous, 1 / Λ), Λ = sqrt(V/(V+τ²)) · exp(d²τ² / (2V(V+τ²))), where d is
    the current estimate and V its variance. Computed at every look and carried forward, it may be
    read at any time without inflating the false-positive rate."""
    if variance_of_difference <= 0 or mixing_variance <= 0:
        raise ValidationFailed("the variances must be positive", where="variance_of_difference")
    v, tau2 = variance_of_difference, mixing_variance
    log_lambda = 0.5 * math.log(v / (v + tau2)) + difference**2 * tau2 / (2 * v * (v + tau2))
    return float(min(previous, math.exp(-log_lambda) if log_lambda > 0 else 1.0, 1.0))
