"""Broadcast throughput on PostgreSQL or SQLite: the audience snapshot of a segment and the gateway's
decisions for every customer (consent, budget, caps, quiet hours, de-duplication, WeCom→SMS
fallback), in the chunks the worker decides them in, per second of wall time.

    .venv/bin/python bench/bench_broadcast.py                       # 100k customers
    .venv/bin/python bench/bench_broadcast.py --customers 20000 --profile
    .venv/bin/python bench/bench_broadcast.py --engine sqlite
    .venv/bin/python bench/bench_broadcast.py --customers 50000 --baseline main~1   # side by side

The issue's target is 20k customers/s at 1M; the figure printed is measured at --customers and its
ratio to the target. Customers are imported with a phone, half with a WeCom external userid (friends),
and SMS and WeCom marketing consent. Two broadcasts a day apart: the first finds no earlier message, the
second one per customer to count against the caps. Sending is not measured (the worker's adapters are).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from common import create_brand_workspace, distinct_phones, fresh_database, machine, side_by_side

from siyu.auth import service as auth
from siyu.broadcasts import service as broadcasts
from siyu.broadcasts import tasks
from siyu.core.db import Database
from siyu.ingest import service as ingest
from siyu.reach import service as reach
from siyu.segments import service as segments

TARGET = 20_000  # customers per second (issue 5, at 1M customers)
NOON = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: outside quiet hours


def _load(db: Database, workspace_id: int, n: int) -> None:
    phones = distinct_phones(np.random.default_rng(7), n)
    step = 50_000
    for start in range(0, n, step):
        records = [
            {
                "phone": str(phones[i]),
                "city": "杭州",
                "wecom_external_userid": f"wm{i}" if i % 2 == 0 else "",
                "consent:sms": "yes",
                "consent:wecom": "yes",
            }
            for i in range(start, min(n, start + step))
        ]
        with db.transaction() as session:
            ingest.import_records(session, workspace_id=workspace_id, kind="customers", records=records)


def _broadcast(
    db: Database, actor: object, segment_id: int, name: str, now: datetime
) -> tuple[int, float, float]:
    """Create and start a broadcast to the segment at `now`, decide all of it: (id, snapshot s, decisions s)."""
    with db.transaction() as session:
        broadcast = broadcasts.create_broadcast(
            session,
            actor=actor,  # type: ignore[arg-type]
            name=name,
            purpose="marketing",
            channel_preference=["wecom", "sms"],
            content={"wecom": {"text": f"{name} 春茶上新"}, "sms": {"text": f"{name} 春茶上新 退订回T"}},
            segment_id=segment_id,
        )
    started = time.perf_counter()
    with db.transaction() as session:
        broadcasts.start_broadcast(session, actor=actor, broadcast_id=broadcast.id, now=now)  # type: ignore[arg-type]
    snapshot = time.perf_counter() - started
    started = time.perf_counter()
    tasks.run_until_decided(db, now=now)
    return broadcast.id, snapshot, time.perf_counter() - started


def measure(args: argparse.Namespace) -> dict[str, float]:
    """One run on a fresh database: the first broadcast (no customer has a message yet), then a second
    a day later (every customer has one to count against the caps: the steady state)."""
    results: dict[str, float] = {}
    with fresh_database(args.engine, workdir=Path(tempfile.mkdtemp())) as db:
        workspace_id, owner_id = create_brand_workspace(db, slug="broadcast")
        started = time.perf_counter()
        _load(db, workspace_id, args.customers)
        print(f"loaded {args.customers:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
        with db.transaction() as session:
            actor = auth.actor_for(session, user_id=owner_id, workspace_id=workspace_id)
            segment = segments.create_segment(session, actor=actor, name="杭州客户", rule='city = "杭州"')
        profiler = cProfile.Profile() if args.profile else None
        for round_, name in enumerate(("first", "second")):
            if db.is_postgres:  # as autovacuum has, after the load and in the day between the broadcasts
                with db.engine.connect() as connection:
                    connection.exec_driver_sql("ANALYZE")
                    connection.commit()  # statistics are transactional: rolled back, the planner had none
            if profiler and round_ == 1:
                profiler.enable()
            broadcast_id, snapshot, deciding = _broadcast(
                db, actor, segment.id, name, NOON + timedelta(days=round_)
            )
            if profiler and round_ == 1:
                profiler.disable()
            results[f"{name}_snapshot"] = snapshot
            results[f"{name}_decisions"] = deciding
            results[f"{name}_rate"] = args.customers / (snapshot + deciding)
            print(
                f"{name} broadcast: snapshot {snapshot:.2f} s, decisions {deciding:.2f} s"
                f" ({args.customers / deciding:,.0f}/s); snapshot + decisions"
                f" {results[f'{name}_rate']:,.0f} customers/s · {results[f'{name}_rate'] / TARGET:.2f}× the"
                f" target of {TARGET:,}/s",
                flush=True,
            )
            with db.reader() as session:
                counts = reach.accounting(
                    session, workspace_id=workspace_id, source="broadcast", source_ref=str(broadcast_id)
                )
            print(f"  by status: {counts.by_status}  by reason: {counts.by_reason}")
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--profile", action="store_true", help="print where the second round's time goes")
    parser.add_argument("--baseline", help="a commit to run first, the same way, for the ratio (e.g. main~3)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(machine(), "·", args.engine, flush=True)
    arguments = ["--customers", str(args.customers), "--engine", args.engine]
    before, after = side_by_side(__file__, args, arguments, measure)
    if before:
        print("\n| round | baseline customers/s | this checkout | ratio |\n|---|---|---|---|")
        for name in ("first", "second"):
            rate, old = after[f"{name}_rate"], before[f"{name}_rate"]
            print(f"| {name} | {old:,.0f} | {rate:,.0f} | {rate / old:.2f}× |")


if __name__ == "__main__":
    main()
