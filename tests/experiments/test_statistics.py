"""A/B statistics against reference values from statsmodels 0.15 and scipy 1.17 (computed once with
them on the same inputs and kept here as numbers), and the properties the product relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.core.errors import ValidationFailed
from siyu.experiments.statistics import (
    adjust_p_values,
    always_valid_p_value,
    assign_variant,
    assignment_point,
    chance_to_beat,
    sample_ratio_mismatch,
    two_proportion_test,
    welch_test,
)


def test_two_proportion_test_matches_statsmodels() -> None:
    result = two_proportion_test(230, 2000, 260, 2000)
    # proportions_ztest([230, 260], [2000, 2000]): z = -1.4468 for A − B; here B − A
    assert result.statistic == pytest.approx(1.446770524405238, rel=1e-12)
    assert result.p_value == pytest.approx(0.14796120474616437, rel=1e-12)
    # confint_proportions_2indep(260, 2000, 230, 2000, method="wald", compare="diff")
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (-0.0053154308851258505, 0.03531543088512585), rel=1e-12
    )
    assert result.difference == pytest.approx(0.015)
    assert result.relative_lift == pytest.approx(0.015 / 0.115)


def test_welch_test_matches_statsmodels() -> None:
    result = welch_test(44.47484679256617, 808.8826877755104, 300, 44.108545249314126, 933.7534027105565, 280)
    # CompareMeans(b, a).ttest_ind(usevar="unequal"), .tconfint_diff(usevar="unequal")
    assert result.statistic == pytest.approx(-0.1491558021876577, rel=1e-10)
    assert result.p_value == pytest.approx(0.8814837484062348, rel=1e-10)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (-5.189943345322442, 4.4573402588183715), rel=1e-10
    )


def test_corrections_match_statsmodels_multipletests() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    assert adjust_p_values(p, method="bonferroni") == pytest.approx([0.05, 0.2, 0.15, 1.0, 0.025])
    assert adjust_p_values(p, method="holm") == pytest.approx([0.04, 0.09, 0.09, 0.2, 0.025])
    assert adjust_p_values(p, method="bh") == pytest.approx([0.025, 0.05, 0.05, 0.2, 0.025])
    with pytest.raises(ValidationFailed, match="unknown correction"):
        adjust_p_values(p, method="sidak-ish")


def test_sample_ratio_mismatch_matches_scipy_chisquare() -> None:
    check = sample_ratio_mismatch([5130, 4870], [0.5, 0.5])
    assert check.statistic == pytest.approx(6.76)
    assert check.p_value == pytest.approx(0.009322376047437499, rel=1e-10)
    assert not check.mismatch  # 0.009 is not below the 0.001 alarm threshold
    assert sample_ratio_mismatch([5400, 4600], [0.5, 0.5]).mismatch


def test_chance_to_beat_agrees_with_a_large_monte_carlo() -> None:
    # 4M draws from the two Beta posteriors (numpy, seed 0): 0.92585 ± 0.00013
    assert chance_to_beat(230, 2000, 260, 2000) == pytest.approx(0.92585375, abs=5e-4)
    assert chance_to_beat(260, 2000, 230, 2000) == pytest.approx(
        1 - chance_to_beat(230, 2000, 260, 2000), abs=1e-9
    )
    assert chance_to_beat(50, 100, 50, 100) == pytest.approx(0.5, abs=1e-9)
    # a very narrow posterior is not stepped over by the integrator
    assert chance_to_beat(10_000, 1_000_000, 10_500, 1_000_000) > 0.99


def test_assignment_is_stable_uniform_and_follows_the_weights() -> None:
    assert assign_variant("welcome-2026", 42, {"a": 1, "b": 1}) == assign_variant(
        "welcome-2026", 42, {"a": 1, "b": 1}
    )
    # a fixed point: the hash is part of the contract (assignments must not move between releases)
    assert assignment_point("welcome-2026", 42) == 0.48217385865293505
    assert assignment_point("welcome-2026", 42) == assignment_point("welcome-2026", "42")
    picks = [assign_variant("spring", i, {"a": 2, "b": 1, "c": 1}, holdout=0.1) for i in range(40_000)]
    counts = {name: picks.count(name) for name in ("a", "b", "c", None)}
    expected = {"a": 0.45, "b": 0.225, "c": 0.225, None: 0.1}
    for name, share in expected.items():
        sd = math.sqrt(share * (1 - share) / 40_000)
        assert abs(counts[name] / 40_000 - share) < 4 * sd, (name, counts)
    # different experiments assign independently
    other = [assign_variant("autumn", i, {"a": 1, "b": 1}) for i in range(20_000)]
    first = [assign_variant("spring2", i, {"a": 1, "b": 1}) for i in range(20_000)]
    agree = sum(x == y for x, y in zip(first, other, strict=True)) / 20_000
    assert abs(agree - 0.5) < 4 * math.sqrt(0.25 / 20_000)


def test_always_valid_p_values_never_rise_and_stay_valid_under_peeking() -> None:
    # under H0, peeking after every 100 customers per arm for 2,000 customers: the always-valid p falls
    # below 0.05 in at most ~5 % of runs, where a naive z-test at each look rejects far more often
    rng = np.random.default_rng(11)
    runs, looks, batch = 400, 20, 100
    always_rejects = naive_rejects = 0
    for _ in range(runs):
        a = rng.normal(0, 1, looks * batch)
        b = rng.normal(0, 1, looks * batch)
        p_always, naive = 1.0, False
        for look in range(1, looks + 1):
            n = look * batch
            difference = b[:n].mean() - a[:n].mean()
            variance = 2.0 / n
            new = always_valid_p_value(difference, variance, mixing_variance=0.05, previous=p_always)
            assert new <= p_always
            p_always = new
            naive = naive or abs(difference) / math.sqrt(variance) > 1.96
        always_rejects += p_always < 0.05
        naive_rejects += naive
    assert always_rejects / runs <= 0.07
    assert naive_rejects / runs > 0.15
    # and it does find a real effect
    assert always_valid_p_value(0.3, 2.0 / 2000, mixing_variance=0.05) < 1e-6


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000), st.integers(1, 10_000), st.data())
def test_tests_are_finite_and_symmetric(n_a: int, n_b: int, data: st.DataObject) -> None:
    s_a = data.draw(st.integers(0, n_a))
    s_b = data.draw(st.integers(0, n_b))
    forward = two_proportion_test(s_a, n_a, s_b, n_b)
    backward = two_proportion_test(s_b, n_b, s_a, n_a)
    assert 0 <= forward.p_value <= 1 and math.isfinite(forward.statistic)
    assert forward.p_value == pytest.approx(backward.p_value, abs=1e-12)
    assert forward.ci_low <= forward.difference <= forward.ci_high


def test_bad_inputs_say_what_is_wrong() -> None:
    with pytest.raises(ValidationFailed, match="not a proportion"):
        two_proportion_test(5, 4, 1, 10)
    with pytest.raises(ValidationFailed, match="at least two"):
        welch_test(1.0, 1.0, 1, 2.0, 1.0, 5)
    with pytest.raises(ValidationFailed, match="weights"):
        assign_variant("x", 1, {"a": 0})
    with pytest.raises(ValidationFailed, match="holdout"):
        assign_variant("x", 1, {"a": 1}, holdout=1.0)
