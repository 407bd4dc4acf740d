"""Live segment membership on the demo brand: backfill of 20 segments, how long after an order its
membership changes are stored, the time sweep, and a reconciliation (which must find zero drift).

Builds the demo brand in a fresh database per engine, saves 20 segments (each backfilled on create),
then imports single orders the way the batch API and webhook do and times `process_pending` right after
each: the order's customer re-evaluated against the segments that read orders (a new customer: all 20).

    .venv/bin/python bench/bench_live_segments.py                      # 50 000 customers, both engines
    .venv/bin/python bench/bench_live_segments.py --customers 200000 --engines postgres
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import DEFAULT_PG_URL, fresh_database, machine

from siyu.auth import service as auth
from siyu.demo import service as demo
from siyu.ingest import service as ingest
from siyu.orders import service as orders
from siyu.segments import service as segments

RULES = [
    "order_count >= 2",
    "order_count >= 5",
    "net_revenue >= 200",
    'orders(within="30d").count >= 1',
    'orders(within="60d").count = 0',
    'orders(category="奶茶", within="30d").count >= 2',
    'orders(within="90d").sum >= 100',
    'events(type="coupon_view", within="30d").count >= 1',
    'events(type="coupon_view", within="60d").count = 0',
    "has(wecom_external_userid)",
    'city = "上海"',
    'city != "北京"',
    'gender = "female"',
    'last_order_at < ago("45d")',
    'first_order_at > ago("90d")',
    'consent(channel="sms")',
    "avg_order_value >= 40",
    'has(wecom_external_userid) and orders(within="90d").count >= 2',
    'city = "上海" and order_count >= 3',
    "not has(phone) or order_count = 0",
]


def run(engine: str, args: argparse.Namespace) -> None:
    with (
        fresh_database(engine, workdir=args.workdir, pg_url=args.pg_url) as db,
        tempfile.TemporaryDirectory() as tmp,
    ):
        build = demo.build_demo(db, directory=Path(tmp), customers=args.customers, seed=args.seed)
        workspace_id = build.workspace_id
        with db.reader() as session:
            actor = auth.command_line_actor(session, workspace_id=workspace_id)
            now = orders.last_order_at(session, workspace_id=workspace_id)
        backfills = []
        for number, rule in enumerate(RULES):
            with db.transaction() as session:
                step = time.perf_counter()
                segments.create_segment(
                    session, actor=actor, name=f"s{number}", rule=rule, accept_warnings=True
                )
            backfills.append(time.perf_counter() - step)
        print(
            f"{engine}: {len(RULES)} segments backfilled, per segment median {statistics.median(backfills):.2f}s, "
            f"max {max(backfills):.2f}s"
        )
        with db.transaction() as session:
            while segments.process_pending(session, workspace_id=workspace_id).remaining:
                pass
        visible = []
        for number in range(args.orders):
            record = {
                "external_id": f"LIVE-{number}",
                "phone": f"+86139{87650000 + number * 7919:08d}",
                "status": "paid",
                "paid_cents": 5800,
                "placed_at": (now - timedelta(hours=1)).isoformat(),
            }
            with db.transaction() as session:
                _, _, rejects = ingest.import_records(
                    session, workspace_id=workspace_id, kind="orders", records=[record]
                )
            assert not rejects, rejects
            step = time.perf_counter()
            with db.transaction() as session:
                run_ = segments.process_pending(session, workspace_id=workspace_id)
            visible.append(time.perf_counter() - step)
            assert run_.entered > 0, run_
        print(
            f"{engine}: order → membership stored: median {statistics.median(visible) * 1000:.0f} ms, "
            f"max {max(visible) * 1000:.0f} ms over {len(visible)} orders (new customers: all 20 segments)"
        )
        with db.transaction() as session:
            step = time.perf_counter()
            swept = segments.sweep(session, workspace_id=workspace_id, now=now + timedelta(days=1))
        print(
            f"{engine}: sweep of {swept.segments} time-dependent segments {time.perf_counter() - step:.2f}s"
        )
        with db.transaction() as session:
            step = time.perf_counter()
            drift = segments.reconcile(session, workspace_id=workspace_id, now=now + timedelta(days=1))
        found = sum(d.missing + d.extra for d in drift)
        print(f"{engine}: reconciliation {time.perf_counter() - step:.2f}s, drift {found}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    print(machine())
    for engine in args.engines.split(","):
        run(engine.strip(), args)


if __name__ == "__main__":
    main()
