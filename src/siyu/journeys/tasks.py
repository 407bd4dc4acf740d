"""The journey engine's loop: reads the outbox, runs the schedules and the due steps, one short
transaction per batch. It runs inside `siyu worker` and inside `siyu serve`, next to the reach worker;
any number may run against one database (claims skip rows another engine holds)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError, OperationalError

from siyu.core.db import Database
from siyu.journeys import service

log = logging.getLogger("siyu.journeys.engine")


@dataclass
class EngineStats:
    rounds: int = 0
    events: int = 0
    enrolled: int = 0
    steps: int = 0
    conflicts: int = 0  # a batch refused by the execution log's key (rolled back, nothing written)
    by_kind: dict[str, int] = field(default_factory=dict)


class JourneyEngine:
    """`run_once` does one pass over every workspace with a live journey (tests drive it with `now`)."""

    def __init__(
        self,
        database: Database,
        *,
        batch_size: int = 200,
        event_batch: int = 1000,
        poll_seconds: float = 1.0,
        workspace_id: int | None = None,
    ) -> None:
        self.database = database
        self.batch_size = batch_size
        self.event_batch = event_batch
        self.poll_seconds = poll_seconds
        self.workspace_id = workspace_id  # None: every workspace
        self.stats = EngineStats()

    def _workspaces(self) -> list[int]:
        if self.workspace_id is not None:
            return [self.workspace_id]
        with self.database.reader() as session:
            return service.pending_workspaces(session)

    def run_once(self, now: datetime | None = None) -> int:
        """One pass: events and schedules of each workspace, then due steps until none are left;
        returns how many steps ran."""
        self.stats.rounds += 1
        for workspace_id in self._workspaces():
            while True:
                with self.database.transaction() as session:
                    run = service.consume_events(
                        session, workspace_id=workspace_id, limit=self.event_batch, now=now
                    )
                self.stats.events += run.events
                self.stats.enrolled += run.enrolled
                if run.events < self.event_batch:
                    break
            with self.database.transaction() as session:
                self.stats.enrolled += service.run_schedules(
                    session, workspace_id=workspace_id, now=now
                ).enrolled
        steps = 0
        while True:
            try:
                with self.database.transaction() as session:
                    run = service.process_due(
                        session, workspace_id=self.workspace_id, now=now, limit=self.batch_size
                    )
            except IntegrityError:
                # the execution log refused a step that ran already: the batch is rolled back whole
                self.stats.conflicts += 1
                log.warning("journey engine: a batch met a step that had run; rolled back")
                continue
            steps += run.steps
            for kind, count in run.by_kind.items():
                self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + count
            if run.claimed < self.batch_size:
                break
        self.stats.steps += steps
        return steps

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; waits `poll_seconds` between passes that ran nothing."""
        log.info("journey engine started")
        while not stop.is_set():
            try:
                steps = self.run_once()
            except OperationalError as exc:  # the database restarting or busy: wait and look again
                log.warning("journey engine: %s", str(exc).splitlines()[0])
                steps = 0
            if not steps:
                stop.wait(self.poll_seconds)
        log.info("journey engine stopped")


class BackgroundEngine:
    """The engine in a thread (`siyu serve`, `siyu worker`): started with its host, stopped with it."""

    def __init__(self, engine: JourneyEngine) -> None:
        self.engine = engine
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=engine.run, args=(self.stop,), name="journey-engine", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
