"""The reach worker: claims due messages from the database, sends each through its channel's adapter
(a batch adapter gets all of a claim's messages for its channel at once), and records the result, one
short transaction per message. Every `results_poll_seconds` it also reads the send results of open WeCom
mass messages (`poll_wecom_deliveries`).

Beside it, in a thread of its own, runs the scheduler (`core.schedule`) with the jobs of `SCHEDULE`:
live segment processing, the time sweep, points, coupon refunds and referrals from the outbox, the daily
RFM, lifecycle, CLV and reconciliation runs, and the daily fetch of WeCom's group figures.

Several workers may run against one database (`siyu worker`, and the one inside `siyu serve`); claims
are leases (`outbox.claim`), so no two hold the same message at once. The window of at-least-once
delivery — a provider accepted a message and the worker died before recording it — is closed by the
idempotency key every attempt carries (docs/reach.md).
"""

from __future__ import annotations

import importlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from siyu.core.db import Database
from siyu.core.errors import SiyuError
from siyu.core.schedule import BackgroundScheduler, Job, Scheduler
from siyu.core.timeutil import utcnow
from siyu.reach import service
from siyu.reach.adapters.base import BatchAdapter, OutboundMessage, SendResult
from siyu.reach.adapters.registry import Adapters
from siyu.reach.adapters.wecom import WecomMassAdapter
from siyu.wecom import service as wecom
from siyu.workspaces import service as workspaces

log = logging.getLogger("siyu.reach.worker")
RECORD_CHUNK = 500

# work of other domains the worker does on every poll, before it claims ("module:function", each called
# with the Database): named, not imported, so that reach imports none of the domains that send through it
PERIODIC = (
    "siyu.broadcasts.tasks:run_due",
    "siyu.wecom.tasks:send_welcomes",
    "siyu.wecom.tasks:sync_live_codes",
    "siyu.wecom.tasks:follow_up",
    "siyu.communities.tasks:run_group_posts",
)


# the jobs of the worker's scheduler, per workspace (core.schedule; named, not imported, as PERIODIC);
# daily times are the workspace's own, spread so that the scores exist before segments read them
SCHEDULE = (
    # live membership: a change is visible within a second of the order (each idle run costs a few ms)
    Job("siyu.segments.tasks:process_events", every=timedelta(seconds=0.5), lease=timedelta(minutes=10)),
    Job("siyu.segments.tasks:sweep", every=timedelta(minutes=10), lease=timedelta(minutes=30)),
    # the other outbox consumers: an order earns its points, a refund takes them back and reverses its
    # coupon redemptions, an invitee's order moves the referral on, within a second or two
    Job(
        "siyu.membership.tasks:process_order_events", every=timedelta(seconds=1), lease=timedelta(minutes=10)
    ),
    Job("siyu.coupons.tasks:apply_order_events", every=timedelta(seconds=1), lease=timedelta(minutes=10)),
    Job("siyu.referrals.tasks:process_events", every=timedelta(seconds=1), lease=timedelta(minutes=10)),
    # points that expire at midnight leave the balances before the tier review reads them
    Job("siyu.membership.tasks:expire_points", daily_at=clock_time(0, 10)),
    Job("siyu.membership.tasks:evaluate_tiers", daily_at=clock_time(0, 30)),
    Job("siyu.rfm.tasks:compute", daily_at=clock_time(3, 0)),
    Job("siyu.lifecycle.tasks:sweep", daily_at=clock_time(3, 15)),
    Job("siyu.clv.tasks:score", daily_at=clock_time(3, 30)),
    Job("siyu.segments.tasks:reconcile", daily_at=clock_time(4, 30), lease=timedelta(hours=1)),
    # WeCom's group figures of yesterday (群聊数据统计) are ready by then
    Job("siyu.wecom.tasks:fetch_group_stats", daily_at=clock_time(6, 0)),
)


def workspace_zones(session: Session) -> list[tuple[int, str]]:
    """Every workspace with its time zone: whom the scheduler's jobs run for."""
    return [(ws.id, ws.timezone) for ws in workspaces.list_workspaces(session)]


def background_scheduler(database: Database) -> BackgroundScheduler | None:
    """The scheduler thread of `siyu worker` and `siyu serve`, unless SIYU_SCHEDULE_ENABLED=false."""
    from siyu.core.config import get_settings

    return BackgroundScheduler(scheduler_for(database)) if get_settings().schedule_enabled else None


def scheduler_for(
    database: Database, *, workspace_id: int | None = None, jobs: Sequence[Job] = SCHEDULE
) -> Scheduler:
    """The worker's scheduler (every workspace, or one: tests)."""
    return Scheduler(database, jobs, workspaces=workspace_zones, workspace_id=workspace_id)


def periodic_tasks(names: Sequence[str] = PERIODIC) -> list[Callable[[Database], object]]:
    tasks = []
    for name in names:
        module, function = name.split(":")
        tasks.append(getattr(importlib.import_module(module), function))
    return tasks


@dataclass
class WorkerStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class Worker:
    """One worker loop; `run_once` does one claim and its sends (tests drive it step by step)."""

    def __init__(
        self,
        database: Database,
        adapters: Adapters,
        *,
        batch_size: int = 50,
        lease_seconds: float = 60.0,
        retry_base_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        name: str | None = None,
        rng: random.Random | None = None,
        workspace_id: int | None = None,
        periodic: Sequence[Callable[[Database], object]] = (),
        results_poll_seconds: float = 60.0,
    ) -> None:
        self.database = database
        self.adapters = adapters
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.retry_base_seconds = retry_base_seconds
        self.poll_seconds = poll_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.rng = rng or random.Random()
        self.workspace_id = workspace_id  # None: every workspace
        self.results_poll_seconds = results_poll_seconds
        self.stats = WorkerStats()
        self.periodic = list(periodic)
        # when the rate limits pay for the next message the last `run_once` held back (None: none was)
        self.next_token_at: datetime | None = None

    def run_once(self) -> int:
        """Run the periodic tasks, then claim one batch per batch channel and one of the other channels,
        and send them; returns how many messages were claimed."""
        for task in self.periodic:
            try:
                task(self.database)
            except OperationalError:
                raise
            except Exception:  # a failing task must not stop delivery: logged, tried again next poll
                log.exception("periodic task %s failed", getattr(task, "__qualname__", task))
        batch_channels = {
            channel: adapter
            for channel, adapter in self.adapters.by_channel.items()
            if isinstance(adapter, BatchAdapter)
        }
        total = 0
        self.next_token_at = None
        for channel, adapter in batch_channels.items():
            with self.database.transaction() as session:
                claimed = self._claim(
                    session, limit=adapter.max_batch, channels=[channel], exclude_channels=()
                )
            if claimed:
                results = self._send_batch(adapter, [item.message for item in claimed])
                self._record_many(claimed, results)
            total += len(claimed)
        with self.database.transaction() as session:
            claimed = self._claim(
                session, limit=self.batch_size, channels=None, exclude_channels=list(batch_channels)
            )
        for item in claimed:
            single = self.adapters.for_channel(item.message.channel)
            if isinstance(single, BatchAdapter):  # a batch adapter as the default: a batch of one
                result = self._send_batch(single, [item.message])[0]
            else:
                try:
                    result = single.send(item.message)
                except Exception as exc:  # an adapter bug must not kill the loop: retried, then dead-lettered
                    log.exception("adapter %s raised on message %s", single.kind, item.message.message_id)
                    result = SendResult.retry(f"{single.kind} adapter raised {type(exc).__name__}: {exc}")
            self._record_many([item], [result])
        total += len(claimed)
        self.stats.claimed += total
        return total

    def _claim(
        self,
        session: Session,
        *,
        limit: int,
        channels: Sequence[str] | None,
        exclude_channels: Sequence[str],
    ) -> list[service.Claimed]:
        outcome = service.claim_due(
            session,
            limit=limit,
            lease_seconds=self.lease_seconds,
            workspace_id=self.workspace_id,
            channels=channels,
            exclude_channels=exclude_channels,
        )
        if outcome.next_token_at is not None:
            self.next_token_at = min(self.next_token_at or outcome.next_token_at, outcome.next_token_at)
        return outcome.leased

    def idle_wait(self, now: datetime | None = None) -> float:
        """How long to wait after a poll that claimed nothing: `poll_seconds`, or less when a rate limit
        held messages back — until its next token, so that a limited channel sends at its rate rather
        than in bursts a poll apart (at least a millisecond: never a busy loop)."""
        if self.next_token_at is None:
            return self.poll_seconds
        until = (self.next_token_at - (now or utcnow())).total_seconds()
        return min(self.poll_seconds, max(0.001, until))

    def _send_batch(self, adapter: BatchAdapter, messages: list[OutboundMessage]) -> list[SendResult]:
        try:
            results = adapter.send_batch(messages)
            if len(results) != len(messages):
                raise RuntimeError(f"{len(results)} results for {len(messages)} messages")
        except Exception as exc:  # as for one message: every message of the batch retries
            log.exception("batch adapter %s raised on %d messages", adapter.kind, len(messages))
            error = f"{adapter.kind} adapter raised {type(exc).__name__}: {exc}"
            return [SendResult.retry(error) for _ in messages]
        return results

    def _record_many(self, items: list[service.Claimed], results: list[SendResult]) -> None:
        """Record results, up to `RECORD_CHUNK` per transaction (a batch of thousands must be recorded
        well within its lease)."""
        for start in range(0, len(items), RECORD_CHUNK):
            statuses: list[tuple[service.Claimed, str]] = []
            with self.database.transaction() as session:
                for item, result in zip(
                    items[start : start + RECORD_CHUNK], results[start : start + RECORD_CHUNK], strict=True
                ):
                    status = service.complete(
                        session,
                        message_id=item.message.message_id,
                        lease_token=item.lease_token,
                        result=result,
                        retry_base_seconds=self.retry_base_seconds,
                        rng=self.rng,
                    )
                    statuses.append((item, status))
            for item, status in statuses:
                self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
                if status == "lost":
                    self.stats.lost += 1
                    log.warning(
                        "message %s: lease expired before its result was recorded", item.message.message_id
                    )

    def poll_results(self) -> PollRound | None:
        """Read the results of open WeCom mass messages, when channel wecom goes through WeCom."""
        if not isinstance(self.adapters.for_channel("wecom"), WecomMassAdapter):
            return None
        return poll_wecom_deliveries(self.database, workspace_id=self.workspace_id)

    def drain(self, *, max_rounds: int = 10_000) -> int:
        """Run until nothing is due (tests and `siyu worker --once`); returns how many were claimed."""
        total = 0
        for _ in range(max_rounds):
            claimed = self.run_once()
            total += claimed
            if not claimed:
                break
        return total

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; waits `idle_wait()` whenever it claimed nothing."""
        log.info("reach worker %s started", self.name)
        polled_at = float("-inf")
        while not stop.is_set():
            try:
                claimed = self.run_once()
                if (
                    self.results_poll_seconds > 0
                    and time.monotonic() - polled_at >= self.results_poll_seconds
                ):
                    polled_at = time.monotonic()
                    try:
                        self.poll_results()
                    except OperationalError:
                        raise
                    except Exception:  # a poll must never stop the sending
                        log.exception("reach worker %s: polling WeCom results failed", self.name)
            except OperationalError as exc:  # the database restarting or busy: wait and look again
                log.warning("reach worker %s: %s", self.name, str(exc).splitlines()[0])
                claimed = 0
            if not claimed:
                stop.wait(self.idle_wait())
        log.info("reach worker %s stopped at %s", self.name, utcnow().isoformat())


@dataclass
class PollRound:
    """What one poll of WeCom results did, and what WeCom refused (msgid, reason)."""

    batches: int = 0
    delivered: int = 0
    failed: int = 0
    waiting: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def poll_wecom_deliveries(
    database: Database, *, workspace_id: int | None = None, now: datetime | None = None
) -> PollRound:
    """For each open mass message of channel wecom: ask WeCom for its send results (outside any write
    transaction), then mark its messages delivered or failed in one transaction. One refusal by WeCom
    does not hold back the other mass messages."""
    round_ = PollRound()
    with database.reader() as session:
        batches = service.open_wecom_batches(session, workspace_id=workspace_id)
    for batch in batches:
        try:
            with database.reader() as session:
                results = wecom.mass_message_results(
                    session, workspace_id=batch.workspace_id, msgid=batch.msgid
                )
            with database.transaction() as session:
                outcome = service.apply_wecom_results(
                    session, workspace_id=batch.workspace_id, msgid=batch.msgid, results=results, now=now
                )
        except SiyuError as exc:
            log.warning("results of WeCom mass message %s: %s", batch.msgid, exc)
            round_.failures.append((batch.msgid, str(exc)))
            continue
        round_.batches += 1
        round_.delivered += outcome.delivered
        round_.failed += outcome.failed
        round_.waiting += outcome.waiting
    return round_


def worker_from_settings(database: Database) -> Worker:
    from siyu.core.config import get_settings
    from siyu.reach.adapters.registry import build_adapters

    settings = get_settings()
    return Worker(
        database,
        build_adapters(settings, database=database),
        batch_size=settings.reach_batch_size,
        lease_seconds=settings.reach_lease_seconds,
        retry_base_seconds=settings.reach_retry_base_seconds,
        poll_seconds=settings.reach_poll_seconds,
        periodic=periodic_tasks(),
        results_poll_seconds=settings.reach_results_poll_seconds,
    )


class BackgroundWorker:
    """A worker in a thread of the web process (`siyu serve`): started with the app, stopped with it."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop = threading.Event()
        self.thread = threading.Thread(target=worker.run, args=(self.stop,), name="reach-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
