"""Workers against the real database: sends recorded, retries with backoff then dead letters, leases
that expire, re-checks at send time, rate limits, receipts and bounces, and on PostgreSQL several
workers that never send one message twice."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.reach import service
from siyu.reach.adapters.base import OutboundMessage, SendResult
from siyu.reach.adapters.registry import Adapters
from siyu.reach.models import ReachMessage
from siyu.reach.tasks import BackgroundWorker, Worker
from tests.factories import member
from tests.reach.conftest import CONTENT, NOON, reachable


class Recording:
    """A fake provider at the adapter seam: records each call, answers as told."""

    kind = "fake"

    def __init__(self, answers: list[SendResult] | None = None) -> None:
        self.calls: list[OutboundMessage] = []
        self.answers = list(answers or [])
        self.lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self.lock:
            self.calls.append(message)
            if self.answers:
                return self.answers.pop(0)
        return SendResult.sent(f"p-{message.message_id}")


def _broadcast(db: Database, workspace_id: int, count: int, **kwargs) -> list[int]:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(count)]
        service.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=kwargs.pop("ref", "b"),
            customer_ids=ids, content=CONTENT, purpose="marketing", channel_preference=["sms"], now=NOON, **kwargs,
        )  # fmt: skip
    return ids


def _statuses(db: Database, workspace_id: int) -> Counter[str]:
    with db.reader() as session:
        return Counter(
            session.scalars(select(ReachMessage.status).where(ReachMessage.workspace_id == workspace_id))
        )


def _worker(db: Database, adapter: Recording, **kwargs) -> Worker:  # type: ignore[no-untyped-def]
    kwargs.setdefault("retry_base_seconds", 0.0)
    return Worker(db, Adapters({"sms": adapter}), rng=random.Random(1), **kwargs)


def _own(db: Database, workspace_id: int, adapter: Recording, **kwargs) -> Worker:  # type: ignore[no-untyped-def]
    """A worker of this test's workspace only: the database is shared with other tests."""
    return _worker(db, adapter, workspace_id=workspace_id, **kwargs)


def test_worker_sends_and_records(db: Database, workspace_id: int) -> None:
    _broadcast(db, workspace_id, 5)
    adapter = Recording()
    _own(db, workspace_id, adapter, batch_size=2).drain()
    assert _statuses(db, workspace_id) == {"sent": 5}
    assert len({c.idempotency_key for c in adapter.calls}) == 5
    with db.reader() as session:
        rows = list(session.scalars(select(ReachMessage).where(ReachMessage.workspace_id == workspace_id)))
    assert all(m.provider_message_id == f"p-{m.id}" and m.lease_token is None for m in rows)


def test_retries_then_dead_letter_then_requeue(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        service.update_policy(session, actor=owner.actor, changes={"max_attempts": 3})
    _broadcast(db, workspace_id, 1)
    adapter = Recording([SendResult.retry("timeout")] * 3)
    worker = _own(db, workspace_id, adapter)
    worker.drain()
    assert _statuses(db, workspace_id) == {"failed": 1} and len(adapter.calls) == 3
    assert [c.attempt for c in adapter.calls] == [1, 2, 3]
    [dead] = service_list(db, owner, ["failed"])
    assert dead.last_error == "timeout" and dead.attempts == 3
    with db.transaction() as session:
        service.requeue(session, actor=owner.actor, message_id=dead.id)
    worker.drain()
    assert _statuses(db, workspace_id) == {"sent": 1}


def service_list(db: Database, owner, statuses):  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return service.list_messages(session, actor=owner.actor, statuses=statuses)


def test_backoff_grows_with_jitter() -> None:
    rng = random.Random(3)
    waits = [service.backoff(n, base_seconds=10, rng=rng).total_seconds() for n in range(1, 6)]
    for n, wait in enumerate(waits, start=1):
        full = 10 * 2 ** (n - 1)
        assert full / 2 <= wait <= full
    assert service.backoff(40, base_seconds=10).total_seconds() <= 6 * 3600


def test_a_retry_waits_for_its_backoff(db: Database, workspace_id: int) -> None:
    _broadcast(db, workspace_id, 1)
    adapter = Recording([SendResult.retry("busy")])
    _own(db, workspace_id, adapter, retry_base_seconds=3600).drain()
    assert _statuses(db, workspace_id) == {"queued": 1} and len(adapter.calls) == 1
    with db.transaction() as session:
        assert service.claim(session, limit=5, workspace_id=workspace_id) == []
        assert (
            len(service.claim(session, limit=5, workspace_id=workspace_id, now=utcnow() + timedelta(hours=1)))
            == 1
        )


def test_permanent_failure_is_a_dead_letter_at_once_and_a_bounce_blocks_the_address(
    db: Database, workspace_id: int
) -> None:
    [customer] = _broadcast(db, workspace_id, 1)
    adapter = Recording([SendResult.failed("550 no such user", address_rejected=True)])
    _own(db, workspace_id, adapter).drain()
    assert _statuses(db, workspace_id) == {"failed": 1}
    with db.transaction() as session:
        summary = service.send(
            session, workspace_id=workspace_id, source="api", source_ref="x", customer_ids=[customer],
            content={"sms": {"text": "again"}}, purpose="transactional", channel_preference=["sms"],
        )  # fmt: skip
    assert summary.by_reason == {"address_blocked": 1}


def test_receipts_deliver_and_bounce(db: Database, workspace_id: int) -> None:
    _broadcast(db, workspace_id, 2)
    _own(db, workspace_id, Recording()).drain()
    with db.reader() as session:
        first, second = session.scalars(
            select(ReachMessage).where(ReachMessage.workspace_id == workspace_id).order_by(ReachMessage.id)
        )
    with db.transaction() as session:
        assert service.record_receipt(
            session,
            workspace_id=workspace_id,
            provider_message_id=first.provider_message_id or "",
            outcome="delivered",
        )
        service.record_receipt(
            session,
            workspace_id=workspace_id,
            provider_message_id=first.provider_message_id or "",
            outcome="delivered",
        )
        service.record_receipt(
            session,
            workspace_id=workspace_id,
            provider_message_id=second.provider_message_id or "",
            outcome="bounced",
            detail="mailbox full",
        )
        assert (
            service.record_receipt(
                session, workspace_id=workspace_id, provider_message_id="nobody", outcome="delivered"
            )
            is None
        )
    assert _statuses(db, workspace_id) == {"delivered": 1, "failed": 1}
    with db.reader() as session:
        from siyu.reach.service.gateway import blocked_addresses

        assert blocked_addresses(
            session, workspace_id=workspace_id, addresses=[("sms", second.address or "")]
        )


def test_consent_withdrawn_while_deferred_suppresses_at_send(db: Database, workspace_id: int) -> None:
    [customer] = _broadcast(db, workspace_id, 1)
    with db.transaction() as session:
        customers.record_system_consent(
            session, workspace_id=workspace_id, customer_id=customer, contact_channel="sms",
            purpose="marketing", status="withdrawn", source="test",
        )  # fmt: skip
    adapter = Recording()
    _own(db, workspace_id, adapter).drain()
    assert adapter.calls == [] and _statuses(db, workspace_id) == {"suppressed": 1}


def test_an_expired_lease_is_claimed_again_and_the_old_result_is_refused(
    db: Database, workspace_id: int
) -> None:
    _broadcast(db, workspace_id, 1)
    with db.transaction() as session:
        [first] = service.claim(session, limit=5, lease_seconds=30, workspace_id=workspace_id)
        assert service.claim(session, limit=5, lease_seconds=30, workspace_id=workspace_id) == []
    with db.transaction() as session:
        [second] = service.claim(session, limit=5, lease_seconds=30, workspace_id=workspace_id,
                                 now=utcnow() + timedelta(seconds=31))  # fmt: skip
    assert second.message.idempotency_key == first.message.idempotency_key and second.message.attempt == 2
    with db.transaction() as session:
        assert service.complete(session, message_id=first.message.message_id, lease_token=first.lease_token,
                                result=SendResult.sent("late")) == "lost"  # fmt: skip
        assert service.complete(session, message_id=second.message.message_id, lease_token=second.lease_token,
                                result=SendResult.sent("p")) == "sent"  # fmt: skip


def test_rate_limit_is_shared_through_the_bucket(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        # 20/s: the bucket holds 3 (1 + BURST_SECONDS of the rate)
        service.update_policy(session, actor=owner.actor, changes={"rate_limits": {"sms": 20}})
    _broadcast(db, workspace_id, 10)
    now = utcnow()
    with db.transaction() as session:
        assert len(service.claim(session, limit=10, workspace_id=workspace_id, now=now)) == 3
    with db.transaction() as session:
        assert len(service.claim(session, limit=10, workspace_id=workspace_id, now=now)) == 0
    with db.transaction() as session:
        assert (
            len(service.claim(session, limit=10, workspace_id=workspace_id, now=now + timedelta(seconds=1)))
            == 3
        )


def test_background_worker_starts_and_stops(db: Database, workspace_id: int) -> None:
    _broadcast(db, workspace_id, 3)
    adapter = Recording()
    background = BackgroundWorker(_own(db, workspace_id, adapter, poll_seconds=0.05))
    background.start()
    deadline = utcnow() + timedelta(seconds=20)
    while _statuses(db, workspace_id) != {"sent": 3} and utcnow() < deadline:
        threading.Event().wait(0.05)
    background.close(timeout=10)
    assert not background.thread.is_alive()
    assert _statuses(db, workspace_id) == {"sent": 3}


def test_several_workers_never_send_one_message_twice(db: Database, workspace_id: int) -> None:
    # on SQLite the writers serialise on the write lock; on PostgreSQL they race
    _broadcast(db, workspace_id, 300)
    adapter = Recording()
    workers = [_own(db, workspace_id, adapter, batch_size=7) for _ in range(4)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # the database is shared with other tests: count this workspace's messages
    counts = Counter(c.message_id for c in adapter.calls if c.workspace_id == workspace_id)
    assert len(counts) == 300 and max(counts.values()) == 1
    assert sum(w.stats.claimed for w in workers) >= 300
    assert _statuses(db, workspace_id) == {"sent": 300}
