"""A small durable scheduler: periodic jobs per workspace, their last and next run kept in `scheduled_job`.

Jobs are named "module:function" (imported when the scheduler starts, so that `core` imports no domain)
and run every so many seconds or daily at a time of the workspace's time zone. A run is claimed as a lease
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer): several workers against one database
never run one job at once, and the job of a worker killed mid-run runs again once its lease expires.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time as clock
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from siyu.core.db import Base, BigId, Database, UTCDateTime, is_postgres
from siyu.core.timeutil import utcnow

log = logging.getLogger("siyu.schedule")
RESULT_CHARS = 500  # a job's summary and error are kept this long at most
SYNC_SECONDS = 60.0  # how often a scheduler looks for new workspaces and changed time zones


class ScheduledJob(Base):
    """One job of one workspace: when it runs, who holds it now, and how its last run went."""

    __tablename__ = "scheduled_job"
    __table_args__ = (UniqueConstraint("name", "workspace_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))  # "module:function"
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
    every_seconds: Mapped[float | None] = mapped_column(Float)
    daily_at: Mapped[str | None] = mapped_column(String(5))  # "HH:MM" in `timezone`
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    last_status: Mapped[str | None] = mapped_column(String(16))  # ok | error
    last_result: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row; 0 after a run that succeeded
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobFunction(Protocol):
    def __call__(self, database: Database, *, workspace_id: int, now: datetime) -> object: ...


def drain(
    database: Database, step: Callable[[Session, int], int], *, batch: int, max_rounds: int = 20
) -> int:
    """Run an outbox consumer's `step(session, batch)` (it returns how many events it read) a
    transaction per batch until a batch comes back short, at most `max_rounds` times (a larger backlog
    goes on at the next run); returns the events read."""
    events = 0
    for _ in range(max_rounds):
        with database.transaction() as session:
            read = step(session, batch)
        events += read
        if read < batch:
            break
    return events


@dataclass(frozen=True)
class Job:
    """A job's definition: `name` is "module:function", called with the Database, `workspace_id` and
    `now`; what it returns is kept as the run's result. Exactly one of `every` and `daily_at`."""

    name: str
    every: timedelta | None = None
    daily_at: time | None = None
    lease: timedelta = timedelta(minutes=30)  # longer than the job ever takes

    def __post_init__(self) -> None:
        if (self.every is None) == (self.daily_at is None):
            raise ValueError(f"job {self.name}: give exactly one of every and daily_at")
        if ":" not in self.name:
            raise ValueError(f"job {self.name}: name it as module:function")

    @property
    def daily_text(self) -> str | None:
        return self.daily_at.strftime("%H:%M") if self.daily_at is not None else None

    def next_after(self, moment: datetime, timezone: str) -> datetime:
        """When the job is due next after a run at `moment`."""
        if self.every is not None:
            return moment + self.every
        assert self.daily_at is not None
        zone = ZoneInfo(timezone)
        local = moment.astimezone(zone)
        due = datetime.combine(local.date(), self.daily_at, tzinfo=zone)
        if due <= local:
            due = datetime.combine(local.date() + timedelta(days=1), self.daily_at, tzinfo=zone)
        return due.astimezone(moment.tzinfo)


@dataclass
class Claimed:
    job_id: int
    name: str
    workspace_id: int
    timezone: str


@dataclass
class Outcome:
    name: str
    workspace_id: int
    ok: bool
    result: str
    duration_ms: int


def _function(name: str) -> JobFunction:
    module, function = name.split(":")
    found: JobFunction = getattr(importlib.import_module(module), function)
    return found


def _short(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= RESULT_CHARS else text[: RESULT_CHARS - 1] + "…"


class Scheduler:
    """Runs the due jobs of every workspace (or of one: tests), each in its own transactions.

    `workspaces` lists (workspace id, time zone) pairs; the caller provides it, as `core` knows no
    domain. `run_due` does one round (tests drive it with `now`); `run` loops until stopped.
    """

    def __init__(
        self,
        database: Database,
        jobs: Sequence[Job],
        *,
        workspaces: Callable[[Session], Sequence[tuple[int, str]]],
        workspace_id: int | None = None,
        poll_seconds: float = 0.25,
        name: str | None = None,
    ) -> None:
        self.database = database
        self.jobs = {job.name: job for job in jobs}
        self.functions = {job.name: _function(job.name) for job in jobs}
        self.workspaces = workspaces
        self.workspace_id = workspace_id  # None: every workspace
        self.poll_seconds = poll_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._synced_at = float("-inf")

    def sync(self, now: datetime | None = None) -> int:
        """Give every workspace a row per job and follow changed schedules and time zones; returns how
        many rows were added."""
        self._synced_at = clock.monotonic()
        try:
            return self._sync(now or utcnow())
        except IntegrityError:  # another worker added the same rows at the same moment: they exist now
            log.info("scheduler %s: another worker added the jobs first", self.name)
            return 0

    def _sync(self, now: datetime) -> int:
        with self.database.transaction() as session:
            pairs = [
                (ws, tz)
                for ws, tz in self.workspaces(session)
                if self.workspace_id is None or ws == self.workspace_id
            ]
            existing = {
                (row.name, row.workspace_id): row
                for row in session.scalars(
                    select(ScheduledJob).where(ScheduledJob.name.in_(list(self.jobs)))
                    if self.workspace_id is None
                    else select(ScheduledJob).where(
                        ScheduledJob.name.in_(list(self.jobs)), ScheduledJob.workspace_id == self.workspace_id
                    )
                )
            }
            added = 0
            for workspace_id, timezone in pairs:
                for job in self.jobs.values():
                    every = job.every.total_seconds() if job.every is not None else None
                    row = existing.get((job.name, workspace_id))
                    if row is None:
                        first = now if job.every is not None else job.next_after(now, timezone)
                        session.add(
                            ScheduledJob(
                                name=job.name,
                                workspace_id=workspace_id,
                                every_seconds=every,
                                daily_at=job.daily_text,
                                timezone=timezone,
                                next_run_at=first,
                                runs=0,
                                failures=0,
                                created_at=now,
                            )
                        )
                        added += 1
                    elif (row.every_seconds, row.daily_at, row.timezone) != (every, job.daily_text, timezone):
                        row.every_seconds, row.daily_at, row.timezone = every, job.daily_text, timezone
                        base = row.last_started_at or now
                        row.next_run_at = min(row.next_run_at, job.next_after(base, timezone))
            return added

    def _scope(self, now: datetime) -> list[ColumnElement[bool]]:
        due = [
            ScheduledJob.name.in_(list(self.jobs)),
            ScheduledJob.next_run_at <= now,
            or_(ScheduledJob.lease_expires_at.is_(None), ScheduledJob.lease_expires_at <= now),
        ]
        if self.workspace_id is not None:
            due.append(ScheduledJob.workspace_id == self.workspace_id)
        return due

    def claim(self, now: datetime | None = None, *, limit: int = 20) -> list[Claimed]:
        """Lease up to `limit` due jobs to this scheduler (held by no one else, or whose holder's lease
        has expired), the longest overdue first."""
        now = now or utcnow()
        with self.database.reader() as session:
            if session.scalar(select(ScheduledJob.id).where(*self._scope(now)).limit(1)) is None:
                return []  # the common case needs no write transaction
        with self.database.transaction() as session:
            query = (
                select(ScheduledJob).where(*self._scope(now)).order_by(ScheduledJob.next_run_at).limit(limit)
            )
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            for row in rows:
                row.lease_owner = self.name
                row.lease_expires_at = now + self.jobs[row.name].lease
                row.last_started_at = now
            return [Claimed(row.id, row.name, row.workspace_id, row.timezone) for row in rows]

    def _finish(self, claimed: Claimed, *, started: datetime, ok: bool, text: str, duration_ms: int) -> None:
        job = self.jobs[claimed.name]
        values: dict[str, Any] = {
            "lease_owner": None,
            "lease_expires_at": None,
            "last_finished_at": started + timedelta(milliseconds=duration_ms),
            "last_duration_ms": duration_ms,
            "last_status": "ok" if ok else "error",
            # an error comes back on the next interval, not at once: a failing job must not spin
            "next_run_at": job.next_after(started, claimed.timezone),
            "runs": ScheduledJob.runs + 1,
        }
        if ok:
            values.update(last_result=text, failures=0)
        else:
            values.update(last_error=text, failures=ScheduledJob.failures + 1)
        with self.database.transaction() as session:
            session.execute(
                update(ScheduledJob)
                # a holder whose lease ran out and was taken over records nothing
                .where(ScheduledJob.id == claimed.job_id, ScheduledJob.lease_owner == self.name)
                .values(**values)
            )

    def _release(self, claims: Sequence[Claimed]) -> None:
        with self.database.transaction() as session:
            session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.id.in_([c.job_id for c in claims]), ScheduledJob.lease_owner == self.name)
                .values(lease_owner=None, lease_expires_at=None)
            )

    def run_due(self, now: datetime | None = None, *, stop: threading.Event | None = None) -> list[Outcome]:
        """One round: claim the due jobs and run each; a failing job is recorded and does not stop the
        others. Returns what ran. When `stop` is set, the jobs claimed and not yet begun are released."""
        if clock.monotonic() - self._synced_at >= SYNC_SECONDS:
            self.sync(now)
        outcomes = []
        claims = self.claim(now)
        for index, claimed in enumerate(claims):
            if stop is not None and stop.is_set():
                self._release(claims[index:])
                break
            started = now or utcnow()
            begun = clock.perf_counter()
            try:
                result = self.functions[claimed.name](
                    self.database, workspace_id=claimed.workspace_id, now=started
                )
                ok, text = True, _short(result)
            except Exception as exc:  # recorded on the job; the worker goes on
                log.exception("job %s of workspace %s failed", claimed.name, claimed.workspace_id)
                ok, text = False, _short(f"{type(exc).__name__}: {exc}")
            duration_ms = int((clock.perf_counter() - begun) * 1000)
            self._finish(claimed, started=started, ok=ok, text=text, duration_ms=duration_ms)
            outcomes.append(Outcome(claimed.name, claimed.workspace_id, ok, text, duration_ms))
        return outcomes

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set, looking for due jobs every `poll_seconds`."""
        log.info("scheduler %s started with %d jobs", self.name, len(self.jobs))
        while not stop.is_set():
            try:
                self.run_due(stop=stop)
            except OperationalError as exc:  # the database restarting or busy: wait and look again
                log.warning("scheduler %s: %s", self.name, str(exc).splitlines()[0])
            except Exception:  # the thread must outlive any one round: logged, tried again next poll
                log.exception("scheduler %s: a round failed", self.name)
            stop.wait(self.poll_seconds)
        log.info("scheduler %s stopped", self.name)


class BackgroundScheduler:
    """A scheduler in a thread (`siyu worker`, `siyu serve`): started with its host, stopped with it."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.stop = threading.Event()
        self.thread = threading.Thread(target=scheduler.run, args=(self.stop,), name="scheduler", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout)


@dataclass
class JobStatus:
    name: str
    workspace_id: int
    schedule: str
    last_started_at: datetime | None
    last_duration_ms: int | None
    last_status: str | None
    last_result: str | None
    next_run_at: datetime
    last_error: str | None
    failures: int
    running: bool


def statuses(
    session: Session, *, workspace_id: int | None = None, name: str | None = None, now: datetime | None = None
) -> list[JobStatus]:
    """Every job (of one workspace, of one name, when given) with its last run and its next."""
    now = now or utcnow()
    query = select(ScheduledJob).order_by(ScheduledJob.workspace_id, ScheduledJob.name)
    if workspace_id is not None:
        query = query.where(ScheduledJob.workspace_id == workspace_id)
    if name is not None:
        query = query.where(ScheduledJob.name == name)
    return [
        JobStatus(
            name=row.name,
            workspace_id=row.workspace_id,
            schedule=f"every {row.every_seconds:g}s"
            if row.every_seconds is not None
            else f"daily {row.daily_at} {row.timezone}",
            last_started_at=row.last_started_at,
            last_duration_ms=row.last_duration_ms,
            last_status=row.last_status,
            last_result=row.last_result,
            next_run_at=row.next_run_at,
            last_error=row.last_error,
            failures=row.failures,
            running=row.lease_expires_at is not None and row.lease_expires_at > now,
        )
        for row in session.scalars(query)
    ]
