"""Points from imported orders: the outbox consumer's bulk earn against the one-by-one path
(`record_order` per order) on the same orders, in the same process, on SQLite.

    .venv/bin/python bench/bench_points.py                 # 20k orders of 8k customers
    .venv/bin/python bench/bench_points.py --orders 100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import machine
from sqlalchemy import select

from siyu.core import migrate
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.ingest import service as ingest
from siyu.membership import service as membership
from siyu.workspaces import service as workspaces


def _workspace(db: Database, slug: str, orders: int, customers: int) -> int:
    with db.transaction() as session:
        workspace_id = workspaces.create_workspace(session, slug=slug, name=slug).id
    placed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    records = [
        {
            "external_id": f"O{i}",
            "phone": f"+86139{i % customers:08d}",
            "paid_cents": 1000 + i,
            "placed_at": placed,
        }
        for i in range(orders)
    ]
    with db.transaction() as session:
        ingest.import_records(session, workspace_id=workspace_id, kind="orders", records=records)
    return workspace_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=8_000)
    args = parser.parse_args()
    url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'points.db'}"
    migrate.upgrade(url)
    db = Database(url)
    bulk_ws = _workspace(db, "bulk", args.orders, args.customers)
    single_ws = _workspace(db, "single", args.orders, args.customers)

    started = time.perf_counter()
    while True:
        with db.transaction() as session:
            if not membership.process_order_events(session, workspace_id=bulk_ws):
                break
    bulk = time.perf_counter() - started

    started = time.perf_counter()
    with db.transaction() as session:
        events = session.execute(
            select(DomainEvent.customer_id, DomainEvent.payload).where(
                DomainEvent.workspace_id == single_ws, DomainEvent.type == "order.placed"
            )
        ).all()
        for customer_id, payload in events:
            membership.record_order(
                session,
                workspace_id=single_ws,
                customer_id=customer_id,
                external_id=payload["external_id"],
                status=payload["status"],
                paid_cents=payload["paid_cents"],
                refunded_cents=payload["refunded_cents"],
            )
    single = time.perf_counter() - started
    print(machine())
    print(
        f"{args.orders} orders: consumer (bulk earn) {args.orders / bulk:,.0f} orders/s, "
        f"one by one {args.orders / single:,.0f} orders/s; ratio {single / bulk:.1f}x"
    )


if __name__ == "__main__":
    main()
