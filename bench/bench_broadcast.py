"""Broadcast throughput on PostgreSQL or SQLite: the audience snapshot of a segment and the gateway's
decisions for every customer (consent, budget, caps, quiet hours, de-duplication, WeCom→SMS
fallback), in the chunks the worker decides them in, per second of wall time.

    .venv/bin/python bench/bench_broadcast.py                       # 100k customers
    .venv/bin/python bench/bench_broadcast.py --customers 20000 --profile
    .venv/bin/python bench/bench_broadcast.py --engine sqlite

The issue's target is 20k customers/s at 1M; the figure printed is measured at --customers and its
ratio to the target. Customers are imported with a phone, half with a WeCom external userid (friends),
and SMS and WeCom marketing consent. Sending is not measured (the worker's adapters are).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import create_brand_workspace, distinct_phones, fresh_database, machine

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--profile", action="store_true", help="print where the decision time goes")
    args = parser.parse_args()
    print(machine(), "·", args.engine)
    with fresh_database(args.engine, workdir=Path(tempfile.mkdtemp())) as db:
        workspace_id, owner_id = create_brand_workspace(db, slug="broadcast")
        started = time.perf_counter()
        _load(db, workspace_id, args.customers)
        print(f"loaded {args.customers:,} customers in {time.perf_counter() - started:.1f} s")
        with db.transaction() as session:
            actor = auth.actor_for(session, user_id=owner_id, workspace_id=workspace_id)
            segment = segments.create_segment(session, actor=actor, name="杭州客户", rule='city = "杭州"')
            broadcast = broadcasts.create_broadcast(
                session,
                actor=actor,
                name="bench",
                purpose="marketing",
                channel_preference=["wecom", "sms"],
                content={"wecom": {"text": "春茶上新"}, "sms": {"text": "春茶上新 退订回T"}},
                segment_id=segment.id,
            )
        started = time.perf_counter()
        with db.transaction() as session:
            broadcasts.start_broadcast(session, actor=actor, broadcast_id=broadcast.id, now=NOON)
        snapshot = time.perf_counter() - started
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        decided = tasks.run_until_decided(db, now=NOON)
        if profiler:
            profiler.disable()
        deciding = time.perf_counter() - started
        with db.reader() as session:
            counts = reach.accounting(
                session, workspace_id=workspace_id, source="broadcast", source_ref=str(broadcast.id)
            )
        total = snapshot + deciding
        rate = args.customers / total
        print(f"snapshot of {args.customers:,} customers: {snapshot:.2f} s")
        print(f"gateway decisions of {decided:,} customers: {deciding:.2f} s ({decided / deciding:,.0f}/s)")
        print(f"by status: {counts.by_status}  by reason: {counts.by_reason}")
        print(
            f"snapshot + decisions: {rate:,.0f} customers/s · {rate / TARGET:.2f}× the target of {TARGET:,}/s"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
