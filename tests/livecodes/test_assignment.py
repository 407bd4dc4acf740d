"""The choice of staff member without a database: fairness over 10,000 scans, schedules, caps, backups."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

import pytest
from scipy.stats import chisquare

from siyu.livecodes.assignment import Candidate, Strategy, choose, on_duty

MONDAY_NOON = datetime(2026, 6, 1, 12, 0)  # a Monday


def _run(candidates: list[Candidate], strategy: Strategy, scans: int, *, seed: int = 7) -> Counter[int]:
    rng = random.Random(seed)
    cursor = 0
    counts: Counter[int] = Counter()
    for _ in range(scans):
        choice = choose(
            candidates, strategy=strategy, cursor=cursor, local_now=MONDAY_NOON, assigned_today={}, rng=rng
        )
        cursor = choice.cursor
        for c in candidates:
            c.current_weight = choice.current_weights.get(c.user_id, c.current_weight)
        assert choice.user_id is not None
        counts[choice.user_id] += 1
    return counts


def test_round_robin_splits_exactly() -> None:
    counts = _run([Candidate(user_id=i) for i in range(1, 4)], Strategy.ROUND_ROBIN, 10_000)
    assert sorted(counts.values()) == [3333, 3333, 3334]
    assert counts[1] == 3334  # the first member starts the rotation


def test_round_robin_rotates_in_order() -> None:
    candidates = [Candidate(user_id=i) for i in (5, 6, 7)]
    cursor, seen = 0, []
    for _ in range(7):
        choice = choose(
            candidates, strategy="round_robin", cursor=cursor, local_now=MONDAY_NOON, assigned_today={}
        )
        cursor = choice.cursor
        seen.append(choice.user_id)
    assert seen == [5, 6, 7, 5, 6, 7, 5]


def test_weighted_is_exact_over_whole_cycles() -> None:
    weights = {1: 5, 2: 3, 3: 2}
    counts = _run([Candidate(user_id=u, weight=w) for u, w in weights.items()], Strategy.WEIGHTED, 10_000)
    assert counts == {1: 5000, 2: 3000, 3: 2000}  # 1,000 whole cycles of Σweights = 10


def test_weighted_interleaves_instead_of_bursting() -> None:
    candidates = [
        Candidate(user_id=1, weight=5),
        Candidate(user_id=2, weight=1),
        Candidate(user_id=3, weight=1),
    ]
    cursor, seen = 0, []
    for _ in range(7):
        choice = choose(
            candidates, strategy="weighted", cursor=cursor, local_now=MONDAY_NOON, assigned_today={}
        )
        for c in candidates:
            c.current_weight = choice.current_weights.get(c.user_id, c.current_weight)
        seen.append(choice.user_id)
    assert seen == [1, 1, 2, 1, 3, 1, 1]  # smooth weighted round robin, as nginx


@pytest.mark.parametrize("weights", [{1: 1, 2: 1, 3: 1, 4: 1}, {1: 6, 2: 3, 3: 1}])
def test_random_matches_weights_within_statistical_bounds(weights: dict[int, int]) -> None:
    scans = 10_000
    counts = _run(
        [Candidate(user_id=u, weight=w) for u, w in weights.items()], Strategy.RANDOM, scans, seed=2026
    )
    total = sum(weights.values())
    expected = [scans * w / total for w in weights.values()]
    observed = [counts[u] for u in weights]
    assert chisquare(observed, expected).pvalue > 0.01


def test_chi_square_would_catch_an_unfair_split() -> None:
    # the check above can fail: a split that ignores the weights is rejected
    scans = 10_000
    counts = _run([Candidate(user_id=u) for u in (1, 2, 3)], Strategy.RANDOM, scans)
    expected = [scans * w / 10 for w in (6, 3, 1)]
    assert chisquare([counts[u] for u in (1, 2, 3)], expected).pvalue < 1e-6


def test_offline_capped_and_off_duty_members_are_skipped() -> None:
    candidates = [
        Candidate(user_id=1, is_online=False),
        Candidate(user_id=2, daily_cap=3),
        Candidate(user_id=3, weekdays="67"),  # weekends only
        Candidate(user_id=4, start_minute=13 * 60, end_minute=18 * 60),  # afternoons
        Candidate(user_id=5),
    ]
    picks = {
        choose(candidates, strategy=s, cursor=c, local_now=MONDAY_NOON, assigned_today={2: 3}).user_id
        for s in Strategy
        for c in range(5)
    }
    assert picks == {5}


def test_backups_take_over_only_when_no_primary_is_available() -> None:
    candidates = [Candidate(user_id=1, daily_cap=2), Candidate(user_id=9, is_backup=True)]
    first = choose(candidates, strategy="round_robin", cursor=0, local_now=MONDAY_NOON, assigned_today={1: 1})
    assert first.user_id == 1 and not first.used_backup
    capped = choose(
        candidates, strategy="round_robin", cursor=0, local_now=MONDAY_NOON, assigned_today={1: 2}
    )
    assert capped.user_id == 9 and capped.used_backup
    candidates[1].is_online = False
    nobody = choose(
        candidates, strategy="round_robin", cursor=4, local_now=MONDAY_NOON, assigned_today={1: 2}
    )
    assert nobody.user_id is None and nobody.cursor == 4


def test_shifts_across_midnight_belong_to_the_day_they_start() -> None:
    night = Candidate(user_id=1, weekdays="5", start_minute=22 * 60, end_minute=2 * 60)  # Friday nights
    assert on_duty(night, datetime(2026, 6, 5, 23, 0))  # Friday 23:00
    assert on_duty(night, datetime(2026, 6, 6, 1, 30))  # Saturday 01:30, still Friday's shift
    assert not on_duty(night, datetime(2026, 6, 6, 23, 0))  # Saturday night
    assert not on_duty(night, datetime(2026, 6, 5, 1, 0))  # Friday 01:00 is Thursday's shift
    assert not on_duty(night, datetime(2026, 6, 5, 12, 0))
