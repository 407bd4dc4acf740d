"""The journey engine: due steps per second with two worker processes claiming from one PostgreSQL
database (`FOR UPDATE SKIP LOCKED`), then a check that no step ran twice (the execution log holds one
row per enrolment and step, and every enrolment moved exactly once).

    .venv/bin/python bench/bench_journey.py                       # 40k due enrolments, 2 workers
    .venv/bin/python bench/bench_journey.py --enrolments 100000 --workers 2 --batch 500
    .venv/bin/python bench/bench_journey.py --step send --enrolments 5000   # a send step through the gateway
    .venv/bin/python bench/bench_journey.py --enrolments 100000 --baseline main   # side by side with main

The figure is due steps per second of wall time from the workers' start to the last one's end; one
worker alone on the same data is run first as the baseline of the ratio. With `--baseline REF` the
same run is made first by the code of REF (a detached worktree on PYTHONPATH), and both are printed with
the ratio and the issue's target (5k due steps/s with 2 workers).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import fresh_database, machine, side_by_side
from sqlalchemy import func, insert, select

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.customers import service as customers
from siyu.ingest import service as ingest
from siyu.journeys import service as journeys
from siyu.journeys.models import JourneyEnrolment, JourneyStepRun
from siyu.workspaces import service as workspaces

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai: outside quiet hours
TARGET = 5_000  # due steps per second with 2 workers (the reach issue)


def _setup(db: Database, *, enrolments: int, step: str) -> tuple[int, int, list[int]]:
    with db.transaction() as session:
        workspace_id = workspaces.create_workspace(session, slug="bench", name="bench").id
        user = auth.create_user(session, email="bench@example.com", password="password-123", display_name="b")
        auth.add_member(session, workspace_id=workspace_id, user_id=user.id, role=Role.OWNER)
        actor = auth.actor_for(session, user_id=user.id, workspace_id=workspace_id)
    records = [{"phone": f"+86139{i:08d}", "name": f"c{i}"} for i in range(enrolments)]
    with db.transaction() as session:
        ingest.import_records(session, workspace_id=workspace_id, kind="customers", records=records)
    with db.reader() as session:
        ids = list(session.scalars(customers.live_customer_ids(workspace_id)))
    first: dict[str, Any] = {"id": "first", "kind": "wait", "hours": 1}
    if step == "send":
        first = {"id": "first", "kind": "send", "channels": ["sms"], "purpose": "transactional",
                 "content": {"sms": {"text": "您的订单已发货"}}}  # fmt: skip
    definition = {
        "trigger": {"kind": "event", "type": "order.placed"},
        "steps": [first, {"id": "then", "kind": "wait", "days": 1}],
    }
    with db.transaction() as session:
        journey = journeys.create_journey(session, actor=actor, name="bench", definition=definition)
        journeys.set_status(session, actor=actor, journey_id=journey.id, action="start")
        journey_id = journey.id
    return workspace_id, journey_id, ids


def _enrol(db: Database, *, workspace_id: int, journey_id: int, ids: list[int], analyze: bool = True) -> None:
    """Every customer due at the first step now (set-based: the figure is about running steps)."""
    with db.transaction() as session:
        session.execute(
            delete_runs := JourneyStepRun.__table__.delete().where(JourneyStepRun.journey_id == journey_id)
        )
        del delete_runs
        session.execute(JourneyEnrolment.__table__.delete().where(JourneyEnrolment.journey_id == journey_id))
        rows = [
            {"workspace_id": workspace_id, "journey_id": journey_id, "customer_id": c, "number": 1, "version": 1,
             "status": "active", "step_id": "first", "due_at": NOW, "waiting": False, "context": {}, "entered_at": NOW}
            for c in ids
        ]  # fmt: skip
        for start in range(0, len(rows), 5000):
            session.execute(insert(JourneyEnrolment), rows[start : start + 5000])
    if not analyze:
        return
    # as autovacuum would have after a bulk load (committed: statistics are transactional); without
    # statistics the planner takes the table for a few rows and picks its plans for that
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE journey_enrolment")


def _worker(url: str, batch: int, start_at: float, out: Any) -> None:
    db = Database(url, pool_size=2)
    while time.time() < start_at:
        time.sleep(0.001)
    steps = 0
    began = time.perf_counter()
    while True:
        with db.transaction() as session:
            run = journeys.process_due(session, now=NOW, limit=batch)
        steps += run.steps
        if not run.claimed:
            break
    out.put((steps, began, time.perf_counter()))
    db.dispose()


def _run(db: Database, *, workers: int, batch: int) -> tuple[int, float]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 2.0  # every process connected and imported before the clock starts
    processes = [context.Process(target=_worker, args=(db.url, batch, start_at, out)) for _ in range(workers)]
    for process in processes:
        process.start()
    results = [out.get() for _ in processes]
    for process in processes:
        process.join()
    steps = sum(r[0] for r in results)
    wall = max(r[2] for r in results) - min(r[1] for r in results)
    return steps, wall


def _check(db: Database, *, journey_id: int, expected: int) -> str:
    with db.reader() as session:
        total, distinct = session.execute(
            select(func.count(), func.count(func.distinct(JourneyStepRun.enrolment_id))).where(
                JourneyStepRun.journey_id == journey_id, JourneyStepRun.step_id == "first"
            )
        ).one()
        # each stay ran its first step once: a wait step leaves it waiting there, timed for later,
        # a send step moves it on to "then"
        moved = session.scalar(
            select(func.count()).where(
                JourneyEnrolment.journey_id == journey_id,
                JourneyEnrolment.waiting.is_(True) | (JourneyEnrolment.step_id == "then"),
                JourneyEnrolment.due_at > NOW,
            )
        )
    ok = total == distinct == expected == moved
    return f"log rows {total}, distinct enrolments {distinct}, moved on {moved}, expected {expected}: " + (
        "no step ran twice" if ok else "MISMATCH"
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One run on a fresh database: 1 worker, then `--workers`, on the same stays; each checked."""
    figures: dict[str, Any] = {"checks": []}
    with fresh_database("postgres", workdir=Path(tempfile.mkdtemp())) as db:
        workspace_id, journey_id, ids = _setup(db, enrolments=args.enrolments, step=args.step)
        for workers in (1, args.workers):
            _enrol(db, workspace_id=workspace_id, journey_id=journey_id, ids=ids, analyze=not args.no_analyze)
            steps, wall = _run(db, workers=workers, batch=args.batch)
            figures[str(workers)] = steps / wall
            print(
                f"{args.step} step, {workers} worker(s), batch {args.batch}: {steps} due steps in {wall:.2f} s"
                f" = {steps / wall:,.0f} steps/s",
                flush=True,
            )
            check = _check(db, journey_id=journey_id, expected=len(ids))
            figures["checks"].append(check)
            print("  " + check, flush=True)
        print(
            f"{args.workers} workers against 1: ×{figures[str(args.workers)] / figures['1']:.2f}", flush=True
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enrolments", type=int, default=40_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--step", choices=["wait", "send"], default="wait")
    parser.add_argument("--baseline", help="a commit to run first, the same way, for the ratio (e.g. main)")
    parser.add_argument(
        "--no-analyze", action="store_true", help="run before the planner has statistics of the enrolments"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(machine(), flush=True)
    import siyu

    print(f"code: {Path(siyu.__file__).resolve().parent}", flush=True)
    # the workers are spawned: they inherit PYTHONPATH, so a baseline's workers run its code too
    arguments = ["--enrolments", str(args.enrolments), "--workers", str(args.workers), "--batch",
                 str(args.batch), "--step", args.step, *(["--no-analyze"] if args.no_analyze else [])]  # fmt: skip
    before, after = side_by_side(__file__, args, arguments, measure)
    if before:
        print("\n| workers | baseline steps/s | this checkout | ratio |\n|---|---|---|---|")
        for workers in sorted({1, args.workers}):
            old, new = before[str(workers)], after[str(workers)]
            print(f"| {workers} | {old:,.0f} | {new:,.0f} | {new / old:.2f}× |")
        print(f"{args.workers} workers: {after[str(args.workers)] / TARGET:.2f}× the target of {TARGET:,}/s")
        if any("MISMATCH" in c for c in before["checks"] + after["checks"]):
            print("a check failed: a step ran twice or a stay did not move")


if __name__ == "__main__":
    main()
