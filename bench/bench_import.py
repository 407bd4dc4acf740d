"""Import throughput: N orders from a CSV through `import_file`, against a naive one-ORM-object-per-row path.

For each engine (a fresh SQLite file, a fresh PostgreSQL database `siyu_bench_*` that is dropped
afterwards) it prints orders/s of the real import (read, map, validate, resolve identities, upsert orders
and lines, refresh rollups) and of the naive path on a sample, and their ratio. Nothing is asserted.

    .venv/bin/python bench/bench_import.py                   # 1M orders, both engines
    .venv/bin/python bench/bench_import.py --orders 200000 --engines sqlite
"""

from __future__ import annotations

import argparse
import csv
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from common import DEFAULT_PG_URL, create_brand_workspace, distinct_phones, fresh_database, machine
from sqlalchemy import select

from siyu.channels import service as channels
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.customers.models import Customer, CustomerRollup, Identity
from siyu.demo import generator
from siyu.ingest import service as ingest
from siyu.orders.models import Order, OrderLine

HEADERS = (
    "订单号",
    "下单时间",
    "渠道",
    "门店编码",
    "手机号",
    "订单状态",
    "实付金额",
    "退款金额",
    "商品编码",
    "商品名称",
    "品类",
    "数量",
    "单价",
)
ZONE = ZoneInfo(generator.TIMEZONE)


def write_orders_csv(path: Path, *, orders: int, seed: int) -> int:
    """One row per order, customers ≈ orders / 5 with gamma-distributed repeat buying; returns the
    number of distinct customers in the file."""
    rng = np.random.default_rng(seed)
    people = max(orders // 5, 1)
    phones = distinct_phones(rng, people)
    weights = rng.gamma(0.8, 1.0, people)
    who = rng.choice(people, size=orders, p=weights / weights.sum())
    seconds = np.sort(rng.integers(0, 365 * 86_400, orders))
    start = np.datetime64("2024-01-01T00:00:00", "s")
    placed = pl.Series((start + seconds.astype("timedelta64[s]")).astype("datetime64[ms]"))
    skus = [s for s in generator.CATALOG if s.category != "周边"]
    sku = rng.integers(0, len(skus), orders)
    quantity = np.where(rng.random(orders) < 0.1, 2, 1)
    price = np.array([s.price_cents for s in skus])[sku]
    paid = price * quantity
    refund_draw = rng.random(orders)
    refund = np.where(refund_draw < 0.01, paid, np.where(refund_draw < 0.02, paid // 2, 0))
    status = np.where(refund_draw < 0.01, "已退款", np.where(refund_draw < 0.02, "部分退款", "已完成"))
    channel_names = np.array(["门店", "小程序", "美团外卖"])
    store_codes = np.array([s.code for s in generator.STORES])

    def yuan(cents: np.ndarray) -> pl.Series:
        return pl.Series(cents).cast(pl.Utf8).str.zfill(3).str.replace(r"(\d\d)$", ".${1}")

    frame = pl.DataFrame(
        {
            "订单号": pl.Series(np.arange(orders)).cast(pl.Utf8).str.zfill(9).str.replace(r"^(.)", "B${1}"),
            "下单时间": placed.dt.strftime("%Y-%m-%d %H:%M:%S"),
            "渠道": channel_names[rng.choice(3, size=orders, p=[0.6, 0.25, 0.15])],
            "门店编码": store_codes[rng.integers(0, store_codes.size, orders)],
            "手机号": pl.Series(phones[who]).cast(pl.Utf8),
            "订单状态": status,
            "实付金额": yuan(paid),
            "退款金额": yuan(refund),
            "商品编码": np.array([s.code for s in skus])[sku],
            "商品名称": np.array([s.name for s in skus])[sku],
            "品类": np.array([s.category for s in skus])[sku],
            "数量": quantity,
            "单价": yuan(price),
        }
    )
    frame.select(HEADERS).write_csv(path)
    return int(np.unique(who).size)


def _cents(text: str) -> int:
    return int(Decimal(text) * 100) if text else 0


def naive_import(db: Database, *, workspace_id: int, path: Path, rows: int) -> float:
    """The path a first version would take: per row, find the customer by phone with a query, create it
    if missing, add the order and its line as ORM objects and update the rollup in Python. One
    transaction for the whole sample (its most favourable form). Returns seconds."""
    statuses = {"已完成": "paid", "已退款": "refunded", "部分退款": "partially_refunded"}
    with db.reader() as session:
        ids = channels.channel_ids(session, workspace_id=workspace_id)
        aliases = channels.channel_aliases(session, workspace_id=workspace_id)
        channel_ids = {spelling.lower(): ids[key] for spelling, key in aliases.items()}
        store_ids = channels.store_codes(session, workspace_id=workspace_id)
    with path.open(encoding="utf-8") as handle:
        sample = [row for _, row in zip(range(rows), csv.DictReader(handle), strict=False)]
    started = time.perf_counter()
    with db.transaction() as session:
        for row in sample:
            placed = (
                datetime.strptime(row["下单时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE).astimezone(UTC)
            )
            phone = "+86" + row["手机号"]
            paid, refunded = _cents(row["实付金额"]), _cents(row["退款金额"])
            status = statuses[row["订单状态"]]
            identity = session.scalar(
                select(Identity).where(
                    Identity.workspace_id == workspace_id, Identity.kind == "phone", Identity.value == phone
                )
            )
            if identity is None:
                customer = Customer(
                    workspace_id=workspace_id,
                    gender="unknown",
                    attributes={},
                    created_at=placed,
                    updated_at=placed,
                )
                session.add(customer)
                session.flush()
                session.add(
                    Identity(
                        workspace_id=workspace_id,
                        customer_id=customer.id,
                        kind="phone",
                        value=phone,
                        source="naive",
                    )
                )
                rollup = CustomerRollup(
                    customer_id=customer.id,
                    workspace_id=workspace_id,
                    order_count=0,
                    gross_revenue_cents=0,
                    refunded_cents=0,
                    net_revenue_cents=0,
                    avg_order_value_cents=0,
                    categories=[],
                    updated_at=utcnow(),
                )
                session.add(rollup)
                customer_id = customer.id
            else:
                customer_id = identity.customer_id
                found = session.get(CustomerRollup, customer_id)
                assert found is not None
                rollup = found
            order = Order(
                workspace_id=workspace_id,
                external_id=row["订单号"],
                customer_id=customer_id,
                channel_id=channel_ids.get(row["渠道"].lower()),
                store_id=store_ids.get(row["门店编码"]),
                status=status,
                currency="CNY",
                total_cents=paid,
                discount_cents=0,
                paid_cents=paid,
                refunded_cents=refunded,
                placed_at=placed,
                updated_at=utcnow(),
                source="naive",
            )
            session.add(order)
            session.flush()
            quantity = int(row["数量"])
            session.add(
                OrderLine(
                    workspace_id=workspace_id,
                    order_id=order.id,
                    line_no=1,
                    sku=row["商品编码"],
                    name=row["商品名称"],
                    category=row["品类"],
                    quantity=quantity,
                    unit_price_cents=_cents(row["单价"]),
                    amount_cents=_cents(row["单价"]) * quantity,
                )
            )
            if status != "refunded":
                rollup.order_count += 1
                rollup.first_order_at = min(filter(None, (rollup.first_order_at, placed)))
                rollup.last_order_at = max(filter(None, (rollup.last_order_at, placed)))
                if row["品类"] not in rollup.categories:
                    rollup.categories = sorted([*rollup.categories, row["品类"]])
            rollup.gross_revenue_cents += paid
            rollup.refunded_cents += refunded
            rollup.net_revenue_cents = rollup.gross_revenue_cents - rollup.refunded_cents
            if rollup.order_count:
                rollup.avg_order_value_cents = round(rollup.net_revenue_cents / rollup.order_count)
            rollup.updated_at = utcnow()
    return time.perf_counter() - started


def bulk_import(
    db: Database, *, workspace_id: int, owner_id: int, path: Path, workdir: Path
) -> tuple[float, str]:
    started = time.perf_counter()
    job = ingest.import_file(
        db,
        workspace_id=workspace_id,
        kind="orders",
        path=path,
        actor_user_id=owner_id,
        source="bench",
        reject_file=workdir / "bench-rejects.csv",
    )
    seconds = time.perf_counter() - started
    summary = f"job {job.id}: {job.status}, inserted {job.inserted_rows}, rejected {job.rejected_rows}"
    return seconds, summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders in the CSV (one row each)")
    parser.add_argument(
        "--naive-rows", type=int, default=20_000, help="rows of the sample for the naive path"
    )
    parser.add_argument("--engines", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (a database on it is used)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("var/bench"), help="CSV and SQLite files go here"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"orders-{args.orders}.csv"
    started = time.perf_counter()
    people = write_orders_csv(path, orders=args.orders, seed=args.seed)
    print(machine())
    print(
        f"file: {path} — {args.orders} orders, {people} customers, {path.stat().st_size / 1e6:.0f} MB, "
        f"written in {time.perf_counter() - started:.1f}s"
    )
    naive_rows = min(args.naive_rows, args.orders)
    print(f"{'engine':<9} {'path':<7} {'rows':>9} {'seconds':>8} {'orders/s':>10}")
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        with fresh_database(engine, workdir=args.workdir, pg_url=args.pg_url) as db:
            naive_ws, _ = create_brand_workspace(db, slug=f"naive-{engine}")
            naive_seconds = naive_import(db, workspace_id=naive_ws, path=path, rows=naive_rows)
            naive_rate = naive_rows / naive_seconds
            print(
                f"{engine:<9} {'naive':<7} {naive_rows:>9} {naive_seconds:>8.1f} {naive_rate:>10,.0f}",
                flush=True,
            )
            bulk_ws, owner_id = create_brand_workspace(db, slug=f"bulk-{engine}")
            bulk_seconds, summary = bulk_import(
                db, workspace_id=bulk_ws, owner_id=owner_id, path=path, workdir=args.workdir
            )
            bulk_rate = args.orders / bulk_seconds
            print(
                f"{engine:<9} {'import':<7} {args.orders:>9} {bulk_seconds:>8.1f} {bulk_rate:>10,.0f}"
                f"   {bulk_rate / naive_rate:.1f}× naive   ({summary})",
                flush=True,
            )
    path.unlink(missing_ok=True)


if __name__ == "__main__":
    started_at = datetime.now(UTC)
    main()
    print(f"done in {(datetime.now(UTC) - started_at) / timedelta(seconds=1):.0f}s")
