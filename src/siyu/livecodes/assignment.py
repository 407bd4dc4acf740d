"""Choosing the staff member a scan is handed to: who is available (online, on duty by their
schedule, under their daily cap; backups only when no primary member is), then the code's strategy.

Pure functions over plain values, so that fairness can be tested over many scans without a database;
`scans.scan` loads the state, calls `choose` and stores what changed, under a row lock.

Strategies:
- round_robin: members in their order, one after another, skipping those not available; the code keeps
  a cursor (assignments made), so with everyone available the split is exact.
- weighted: smooth weighted round robin (as nginx balances upstreams): every member gains its weight in
  credit per scan, the one with most credit is chosen and pays the total weight back. Deterministic,
  and over any window of Σweights scans each member gets exactly its weight's share.
- random: weighted random draws (uniform with equal weights); fair in expectation only.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    RANDOM = "random"


@dataclass
class Candidate:
    """One staff member of a code as the chooser sees them."""

    user_id: int
    weight: int = 1
    daily_cap: int | None = None
    is_backup: bool = False
    is_online: bool = True
    weekdays: str = "1234567"
    start_minute: int | None = None
    end_minute: int | None = None
    current_weight: int = 0


@dataclass
class Choice:
    """The member chosen (None: nobody is available), the code's next cursor, and new credits."""

    user_id: int | None
    cursor: int
    current_weights: dict[int, int] = field(default_factory=dict)
    used_backup: bool = False


def on_duty(candidate: Candidate, local_now: datetime) -> bool:
    """Whether `local_now` (in the workspace's zone) is within the member's working days and hours.

    Hours may wrap past midnight (22:00–02:00); a shift that wraps belongs to the day it starts on.
    """
    minute = local_now.hour * 60 + local_now.minute
    start, end = candidate.start_minute, candidate.end_minute
    weekday = local_now.isoweekday()
    if start is None or end is None or start == end:
        return str(weekday) in candidate.weekdays
    if start < end:
        return str(weekday) in candidate.weekdays and start <= minute < end
    if minute >= start:  # evening part of a shift that wraps
        return str(weekday) in candidate.weekdays
    if minute < end:  # early part: the shift began the day before
        return str((weekday - 2) % 7 + 1) in candidate.weekdays
    return False


def available(
    candidates: Sequence[Candidate], *, local_now: datetime, assigned_today: Mapping[int, int]
) -> tuple[list[Candidate], bool]:
    """The members who may take this scan, and whether they are the backups (no primary was free)."""

    def free(c: Candidate) -> bool:
        under_cap = c.daily_cap is None or assigned_today.get(c.user_id, 0) < c.daily_cap
        return c.is_online and under_cap and c.weight > 0 and on_duty(c, local_now)

    primary = [c for c in candidates if not c.is_backup and free(c)]
    if primary:
        return primary, False
    return [c for c in candidates if c.is_backup and free(c)], True


def choose(
    candidates: Sequence[Candidate],
    *,
    strategy: Strategy | str,
    cursor: int,
    local_now: datetime,
    assigned_today: Mapping[int, int],
    rng: random.Random | None = None,
) -> Choice:
    """The member for one scan under `strategy`; `candidates` in the code's order."""
    strategy = Strategy(strategy)
    pool, used_backup = available(candidates, local_now=local_now, assigned_today=assigned_today)
    if not pool:
        return Choice(user_id=None, cursor=cursor)
    if strategy is Strategy.ROUND_ROBIN:
        # the rotation runs over the whole list the pool came from, so a member who comes back online
        # takes their turn in place instead of restarting the cycle
        ring = [c for c in candidates if c.is_backup == used_backup]
        free_ids = {c.user_id for c in pool}
        for step in range(len(ring)):
            index = (cursor + step) % len(ring)
            if ring[index].user_id in free_ids:
                return Choice(ring[index].user_id, cursor + step + 1, used_backup=used_backup)
        raise AssertionError("a member of the pool is in its ring")  # pragma: no cover
    if strategy is Strategy.WEIGHTED:
        total = sum(c.weight for c in pool)
        credits = {c.user_id: c.current_weight + c.weight for c in pool}
        # ties go to the earlier member, so the sequence is reproducible
        order = {c.user_id: i for i, c in enumerate(candidates)}
        best = max(pool, key=lambda c: (credits[c.user_id], -order[c.user_id]))
        credits[best.user_id] -= total
        return Choice(best.user_id, cursor + 1, current_weights=credits, used_backup=used_backup)
    draw = (rng or random.SystemRandom()).choices(pool, weights=[c.weight for c in pool], k=1)[0]
    return Choice(draw.user_id, cursor + 1, used_backup=used_backup)
