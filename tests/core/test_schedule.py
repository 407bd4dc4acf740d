"""The durable scheduler: a due job runs once and not before it is due, an error is recorded and retried
on the next interval, a killed holder's job runs again after its lease, daily times follow the workspace's
time zone, and two schedulers at once (threads with their own connections; on PostgreSQL they race for
the rows under SKIP LOCKED) never run one job twice."""

from __future__ import annotations

import threading
import time as clock
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from siyu.core import schedule
from siyu.core.db import Database
from siyu.core.schedule import Job, ScheduledJob, Scheduler
from siyu.reach.tasks import SCHEDULE, workspace_zones
from siyu.segments import service as segments

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
RUNS: Counter[tuple[str, int]] = Counter()  # runs per database and workspace of the jobs below
FAILING: set[tuple[str, int]] = set()  # whose flaky job raises


def _key(database: Database, workspace_id: int) -> tuple[str, int]:
    return (str(database.engine.url), workspace_id)  # workspace ids repeat across the two engines


def counting(database: Database, *, workspace_id: int, now: datetime) -> str:
    RUNS[_key(database, workspace_id)] += 1
    return f"run {RUNS[_key(database, workspace_id)]}"


def slow(database: Database, *, workspace_id: int, now: datetime) -> str:
    RUNS[_key(database, workspace_id)] += 1
    clock.sleep(0.3)  # long enough for a second scheduler to look while this one holds the job
    return "slow"


def flaky(database: Database, *, workspace_id: int, now: datetime) -> str:
    RUNS[_key(database, workspace_id)] += 1
    if _key(database, workspace_id) in FAILING:
        raise RuntimeError("the provider is down")
    return "fine"


def _scheduler(db: Database, workspace_id: int, *jobs: Job) -> Scheduler:
    return Scheduler(db, jobs, workspaces=workspace_zones, workspace_id=workspace_id)


def _row(db: Database, workspace_id: int, name: str) -> ScheduledJob:
    with db.reader() as session:
        row = session.scalars(
            select(ScheduledJob).where(ScheduledJob.workspace_id == workspace_id, ScheduledJob.name == name)
        ).one()
        session.expunge(row)
        return row


def test_a_due_job_runs_once_and_not_before_it_is_due(db: Database, workspace_id: int) -> None:
    job = Job(f"{__name__}:counting", every=timedelta(minutes=5))
    scheduler = _scheduler(db, workspace_id, job)
    ran = scheduler.run_due(NOW)
    assert [(o.name, o.ok, o.result) for o in ran] == [(job.name, True, "run 1")]
    assert scheduler.run_due(NOW) == []  # done: not due again at once
    assert scheduler.run_due(NOW + timedelta(minutes=4, seconds=59)) == []
    row = _row(db, workspace_id, job.name)
    assert (row.runs, row.last_status, row.last_result, row.next_run_at) == (
        1,
        "ok",
        "run 1",
        NOW + timedelta(minutes=5),
    )
    assert row.lease_owner is None and row.last_duration_ms is not None
    assert len(scheduler.run_due(NOW + timedelta(minutes=5))) == 1
    assert RUNS[_key(db, workspace_id)] == 2
    # a second scheduler (another worker) finds the row and nothing due
    assert _scheduler(db, workspace_id, job).run_due(NOW + timedelta(minutes=6)) == []


def test_an_error_is_recorded_and_retried_on_the_next_interval(db: Database, workspace_id: int) -> None:
    job = Job(f"{__name__}:flaky", every=timedelta(minutes=10))
    other = Job(f"{__name__}:counting", every=timedelta(minutes=10))
    scheduler = _scheduler(db, workspace_id, job, other)
    FAILING.add(_key(db, workspace_id))
    ran = {o.name: o for o in scheduler.run_due(NOW)}
    assert not ran[job.name].ok and "the provider is down" in ran[job.name].result
    assert ran[other.name].ok  # one failing job does not stop the others
    row = _row(db, workspace_id, job.name)
    assert (row.last_status, row.failures, row.next_run_at) == ("error", 1, NOW + timedelta(minutes=10))
    assert row.last_error == "RuntimeError: the provider is down"
    assert scheduler.run_due(NOW + timedelta(minutes=1)) == []  # no retry before the next interval
    with db.reader() as session:
        [status] = schedule.statuses(session, workspace_id=workspace_id, name=job.name)
    assert (status.last_status, status.failures, status.running) == ("error", 1, False)
    FAILING.discard(_key(db, workspace_id))
    ran = {o.name: o for o in scheduler.run_due(NOW + timedelta(minutes=10))}
    assert ran[job.name].ok
    row = _row(db, workspace_id, job.name)
    assert (row.last_status, row.failures, row.runs) == ("ok", 0, 2)


def test_a_killed_holders_job_runs_again_after_its_lease(db: Database, workspace_id: int) -> None:
    job = Job(f"{__name__}:counting", every=timedelta(minutes=1), lease=timedelta(minutes=5))
    killed = _scheduler(db, workspace_id, job)
    killed.sync(NOW)
    assert [c.name for c in killed.claim(NOW)] == [job.name]  # and then the process dies
    survivor = _scheduler(db, workspace_id, job)
    assert survivor.run_due(NOW + timedelta(minutes=2)) == []  # still held
    with db.reader() as session:
        [status] = schedule.statuses(session, workspace_id=workspace_id, now=NOW + timedelta(minutes=2))
    assert status.running
    ran = survivor.run_due(NOW + timedelta(minutes=5))
    assert [o.ok for o in ran] == [True] and RUNS[_key(db, workspace_id)] == 1
    # the killed holder cannot record over the survivor's run
    killed._finish(_claimed(killed, workspace_id, job), started=NOW, ok=False, text="late", duration_ms=1)
    assert _row(db, workspace_id, job.name).last_status == "ok"


def _claimed(scheduler: Scheduler, workspace_id: int, job: Job) -> Any:
    row = _row(scheduler.database, workspace_id, job.name)
    return schedule.Claimed(row.id, row.name, row.workspace_id, row.timezone)


def test_daily_jobs_run_at_the_workspaces_local_time(db: Database, workspace_id: int) -> None:
    job = Job(f"{__name__}:counting", daily_at=time(3, 0))
    scheduler = _scheduler(db, workspace_id, job)
    assert scheduler.run_due(NOW) == []  # 10:00 in Shanghai: the first run is at 03:00 tomorrow
    row = _row(db, workspace_id, job.name)
    assert row.timezone == "Asia/Shanghai"
    assert row.next_run_at == datetime(2026, 6, 1, 19, 0, tzinfo=UTC)  # 03:00 on 2 June, UTC+8
    assert scheduler.run_due(datetime(2026, 6, 1, 18, 59, tzinfo=UTC)) == []
    assert len(scheduler.run_due(datetime(2026, 6, 1, 19, 0, 5, tzinfo=UTC))) == 1
    assert _row(db, workspace_id, job.name).next_run_at == datetime(2026, 6, 2, 19, 0, tzinfo=UTC)
    assert job.next_after(datetime(2026, 6, 1, 18, 0, tzinfo=UTC), "UTC") == datetime(
        2026, 6, 2, 3, 0, tzinfo=UTC
    )


def test_two_schedulers_at_once_never_run_one_job_twice(db: Database, workspace_id: int) -> None:
    job = Job(f"{__name__}:slow", every=timedelta(hours=1))
    schedulers = [_scheduler(db, workspace_id, job) for _ in range(2)]
    schedulers[0].sync(NOW)
    barrier = threading.Barrier(len(schedulers))
    errors: list[BaseException] = []
    outcomes: list[schedule.Outcome] = []

    def work(scheduler: Scheduler) -> None:
        try:
            barrier.wait()
            for step in range(5):  # each looks several times while the other may hold the job
                outcomes.extend(scheduler.run_due(NOW + timedelta(seconds=step)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert RUNS[_key(db, workspace_id)] == 1 and len(outcomes) == 1
    assert _row(db, workspace_id, job.name).runs == 1


def test_schedulers_that_sync_at_once_keep_one_row_per_job(db: Database, workspace_id: int) -> None:
    job = Job(f"{__name__}:counting", every=timedelta(minutes=1))
    first, second = _scheduler(db, workspace_id, job), _scheduler(db, workspace_id, job)
    assert first.sync(NOW) == 1
    assert second.sync(NOW) == 0  # finds the row
    with db.reader() as session:
        rows = session.scalars(select(ScheduledJob).where(ScheduledJob.workspace_id == workspace_id)).all()
    assert len(rows) == 1


def test_the_worker_schedule_names_the_segment_jobs() -> None:
    names = {job.name for job in SCHEDULE}
    assert set(segments.JOBS.values()) <= names
    assert {"siyu.rfm.tasks:compute", "siyu.lifecycle.tasks:sweep", "siyu.clv.tasks:score"} <= names
    every = {job.name: job.every for job in SCHEDULE}
    assert every[segments.JOBS["process"]] is not None and every[segments.JOBS["process"]] <= timedelta(
        seconds=1
    )
