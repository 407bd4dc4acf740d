"""Segment counts on the demo brand: how long the rule compiler's SQL takes on SQLite and PostgreSQL.

Builds the demo brand (through the importer, as `siyu demo` does) in a fresh database per engine, tags
a tenth of the customers VIP through the tags service, then counts a few rules — one condition each and
a five-condition rule — several times and prints the best time and the count. `now` is the demo's
newest order, so windows catch data.

    .venv/bin/python bench/bench_segments.py                      # 50 000 customers, SQLite then PostgreSQL
    .venv/bin/python bench/bench_segments.py --customers 200000 --engines postgres
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import DEFAULT_PG_URL, fresh_database, machine

from siyu.auth import service as auth
from siyu.core.db import Database
from siyu.demo import service as demo
from siyu.orders import service as orders
from siyu.segments import service as segments
from siyu.tags import service as tags

RULES = {
    "rollup field": "order_count >= 3",
    "tag": 'tag("VIP")',
    "orders in a window": 'orders(category="奶茶", within="30d").count >= 2',
    "no order for 60 days": 'orders(within="60d").count = 0',
    "events in a window": 'events(type="coupon_view", within="60d").count = 0',
    "five conditions": (
        'tag("VIP") and has(wecom_external_userid) and orders(within="90d").sum >= 50'
        ' and not events(type="coupon_view", within="30d").count >= 1 and city != "北京"'
    ),
}


def run(engine: str, args: argparse.Namespace) -> None:
    with (
        fresh_database(engine, workdir=args.workdir, pg_url=args.pg_url) as db,
        tempfile.TemporaryDirectory() as tmp,
    ):
        started = time.perf_counter()
        build = demo.build_demo(db, directory=Path(tmp), customers=args.customers, seed=args.seed)
        print(
            f"{engine}: demo brand of {args.customers} customers built in {time.perf_counter() - started:.1f}s"
        )
        actor = _owner(db, build.workspace_id)
        with db.transaction() as session:
            ids = segments.member_ids(session, actor=actor, rule="all")
            group = tags.create_group(session, actor=actor, name="等级")
            vip = tags.create_tag(session, actor=actor, group_id=group.id, name="VIP")
            step = time.perf_counter()
            tags.tag_customers(session, actor=actor, tag_id=vip.id, customer_ids=sorted(ids)[::10])
            print(f"{engine}: tagged {len(ids) // 10} customers in {time.perf_counter() - step:.2f}s")
        with db.reader() as session:
            now = orders.last_order_at(session, workspace_id=build.workspace_id)
            for label, rule in RULES.items():
                best, count = _best(db, actor, rule, now, args.repeat)
                print(f"{engine}: {label:<22} {best * 1000:8.1f} ms  {count:>8} customers   {rule}")


def _owner(db: Database, workspace_id: int):  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return auth.command_line_actor(session, workspace_id=workspace_id)


def _best(db: Database, actor, rule: str, now, repeat: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    times, count = [], 0
    for _ in range(repeat):
        with db.reader() as session:
            step = time.perf_counter()
            count = segments.count_segment_rule(session, actor=actor, rule=rule, now=now).count
            times.append(time.perf_counter() - step)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    print(machine())
    for engine in args.engines.split(","):
        run(engine.strip(), args)


if __name__ == "__main__":
    main()
