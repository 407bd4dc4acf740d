"""The reach worker: claims due messages from the database, sends each through its channel's adapter,
and records the result, one short transaction per message.

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
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.reach import service
from siyu.reach.adapters.base import SendResult
from siyu.reach.adapters.registry import Adapters

log = logging.getLogger("siyu.reach.worker")

# work of other domains the worker does on every poll, before it claims ("module:function", each called
# with the Database): named, not imported, so that reach imports none of the domains that send through it
PERIODIC = ("siyu.broadcasts.tasks:run_due",)


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
        self.stats = WorkerStats()
        self.periodic = list(periodic)

    def run_once(self) -> int:
        """Run the periodic tasks, claim one batch and send it; returns how many messages were claimed."""
        for task in self.periodic:
            try:
                task(self.database)
            except OperationalError:
                raise
            except Exception:  # a failing task must not stop delivery: logged, tried again next poll
                log.exception("periodic task %s failed", getattr(task, "__qualname__", task))
        with self.database.transaction() as session:
            claimed = service.claim(
                session,
                limit=self.batch_size,
                lease_seconds=self.lease_seconds,
                workspace_id=self.workspace_id,
            )
        self.stats.claimed += len(claimed)
        for item in claimed:
            adapter = self.adapters.for_channel(item.message.channel)
            try:
                result = adapter.send(item.message)
            except Exception as exc:  # an adapter bug must not kill the loop: retried, then dead-lettered
                log.exception("adapter %s raised on message %s", adapter.kind, item.message.message_id)
                result = SendResult.retry(f"{adapter.kind} adapter raised {type(exc).__name__}: {exc}")
            with self.database.transaction() as session:
                status = service.complete(
                    session,
                    message_id=item.message.message_id,
                    lease_token=item.lease_token,
                    result=result,
                    retry_base_seconds=self.retry_base_seconds,
                    rng=self.rng,
                )
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            if status == "lost":
                self.stats.lost += 1
                log.warning(
                    "message %s: lease expired before its result was recorded", item.message.message_id
                )
        return len(claimed)

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
        """Work until `stop` is set; waits `poll_seconds` whenever nothing is due."""
        log.info("reach worker %s started", self.name)
        while not stop.is_set():
            try:
                claimed = self.run_once()
            except OperationalError as exc:  # the database restarting or busy: wait and look again
                log.warning("reach worker %s: %s", self.name, str(exc).splitlines()[0])
                claimed = 0
            if not claimed:
                stop.wait(self.poll_seconds)
        log.info("reach worker %s stopped at %s", self.name, utcnow().isoformat())


def worker_from_settings(database: Database) -> Worker:
    from siyu.core.config import get_settings
    from siyu.reach.adapters.registry import build_adapters

    settings = get_settings()
    return Worker(
        database,
        build_adapters(settings),
        batch_size=settings.reach_batch_size,
        lease_seconds=settings.reach_lease_seconds,
        retry_base_seconds=settings.reach_retry_base_seconds,
        poll_seconds=settings.reach_poll_seconds,
        periodic=periodic_tasks(),
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
