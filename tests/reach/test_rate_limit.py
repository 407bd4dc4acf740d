"""The per-channel rate limit's token bucket with a fake clock: it pays exactly R·t sends over t seconds
(after what it holds at first), also when workers read the clock out of order, never banks more than
its capacity, and a worker held back waits until the next token rather than a whole poll interval. bench/bench_delivery_rate.py measures it
against a real webhook receiver."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.reach import service
from siyu.reach.adapters.base import OutboundMessage, SendResult
from siyu.reach.adapters.registry import Adapters
from siyu.reach.tasks import Worker
from tests.factories import member
from tests.reach.conftest import CONTENT, NOON, reachable

RATE = 4.0  # sends per second; steps of 1/32 s are exact in binary, so the arithmetic is exact too


class Accepting:
    kind = "fake"

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult.sent(f"p-{message.message_id}")


def _limited_backlog(db: Database, workspace_id: int, count: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        service.update_policy(session, actor=owner.actor, changes={"rate_limits": {"sms": RATE}})
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(count)]
        service.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref="rate", customer_ids=ids,
            content=CONTENT, purpose="marketing", channel_preference=["sms"], now=NOON,
        )  # fmt: skip


def _claim(db: Database, workspace_id: int, now: datetime) -> service.ClaimOutcome:
    with db.transaction() as session:
        return service.claim_due(session, limit=50, workspace_id=workspace_id, now=now)


def test_bucket_pays_rate_times_elapsed_time(db: Database, workspace_id: int) -> None:
    _limited_backlog(db, workspace_id, 20)
    start = utcnow()
    assert len(_claim(db, workspace_id, start).leased) == 1  # starts full: 1 + 0.1 s of 4/s, 1.4 tokens
    taken = sum(
        len(_claim(db, workspace_id, start + timedelta(seconds=step / 8)).leased) for step in range(1, 25)
    )
    assert taken == RATE * 3  # 3 s, polled every 1/8 s


def test_a_stale_clock_pays_no_interval_twice(db: Database, workspace_id: int) -> None:
    # two workers: B read the clock 1/32 s before A but reached the bucket's lock after A's claim
    _limited_backlog(db, workspace_id, 20)
    start = utcnow()
    assert len(_claim(db, workspace_id, start).leased) == 1
    taken = 0
    for step in range(1, 33):
        a = start + timedelta(seconds=step / 16)
        taken += len(_claim(db, workspace_id, a).leased)
        taken += len(_claim(db, workspace_id, a - timedelta(seconds=1 / 32)).leased)
    assert taken == RATE * 2  # 2 s; moving the refill time back would pay each 1/32 s again


def test_the_bucket_banks_no_more_than_its_capacity(db: Database, workspace_id: int) -> None:
    _limited_backlog(db, workspace_id, 20)
    start = utcnow()
    assert len(_claim(db, workspace_id, start).leased) == 1
    # idle for 3 s: a bucket of a second's worth would now pay 4 at once, a burst of 2R in one second
    assert len(_claim(db, workspace_id, start + timedelta(seconds=3)).leased) == 1
    assert service.capacity(RATE) == pytest.approx(1.4) and service.capacity(500) == pytest.approx(51)


def test_a_held_back_claim_says_when_the_next_token_comes(db: Database, workspace_id: int) -> None:
    _limited_backlog(db, workspace_id, 10)
    start = utcnow()
    first = _claim(db, workspace_id, start)
    next_token = start + timedelta(seconds=0.15)  # 0.4 tokens left; 0.6 more at 4/s
    assert len(first.leased) == 1 and _near(first.next_token_at, next_token)
    held = _claim(db, workspace_id, start + timedelta(seconds=1 / 8))  # 0.9 tokens
    assert held.leased == [] and _near(held.next_token_at, next_token)
    paid = _claim(db, workspace_id, start + timedelta(seconds=1 / 4))
    assert len(paid.leased) == 1


def _near(at: datetime | None, expected: datetime) -> bool:
    return at is not None and abs((at - expected).total_seconds()) < 1e-3


def test_worker_waits_until_the_next_token_not_a_poll(db: Database, workspace_id: int) -> None:
    _limited_backlog(db, workspace_id, 10)
    worker = Worker(
        db, Adapters({"sms": Accepting()}), workspace_id=workspace_id, poll_seconds=5.0, rng=random.Random(1)
    )
    assert worker.run_once() == 1
    assert worker.next_token_at is not None
    assert worker.idle_wait(now=worker.next_token_at - timedelta(seconds=0.2)) == pytest.approx(0.2)
    assert worker.idle_wait(now=worker.next_token_at + timedelta(seconds=1)) == pytest.approx(0.001)


def test_worker_without_a_limit_waits_a_poll(db: Database, workspace_id: int) -> None:
    worker = Worker(db, Adapters({"sms": Accepting()}), workspace_id=workspace_id, poll_seconds=5.0)
    assert worker.run_once() == 0
    assert worker.next_token_at is None and worker.idle_wait() == 5.0
