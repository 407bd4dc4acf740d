"""The demo brand at scale — 1M customers / 10M orders by default — built once per engine and kept, for
the benchmarks that the issues measure "at 1M customers / 10M orders" (segments, RFM, overview).

    .venv/bin/python bench/scale_store.py                                  # both engines, 1M people
    .venv/bin/python bench/scale_store.py --engines sqlite --customers 200000
    .venv/bin/python bench/scale_store.py --workdir /srv/bench-stores       # where the SQLite file goes

The brand is what `siyu demo` builds — the same generator and the same import path users take — with
customers who buy more often and stay longer (`--repeat-scale 2`: about ten orders per person). The
store is kept: a SQLite file `scale-<N>-r<scale>.db` under the work directory, or the PostgreSQL database
`siyu_scale_<N>_r<scale>`. Later runs reuse it. A benchmark that writes takes a copy (`copy_store`): a
file copy, or `CREATE DATABASE … TEMPLATE …`.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import DEFAULT_PG_URL, _admin_dsn, machine

from siyu.core import migrate
from siyu.core.db import Database
from siyu.demo import service as demo

DEFAULT_WORKDIR = Path("var/bench")
# the importer streams a file in chunks, so orders.csv goes in as one file: split into parts, every later
# part refreshed the rollups of the customers it touched from all their orders, slower part after part
ORDERS_PER_IMPORT = None


@dataclass(frozen=True)
class Store:
    engine: str
    url: str
    workspace_id: int
    name: str  # file path (SQLite) or database name (PostgreSQL)


def store_name(*, customers: int, repeat_scale: float) -> str:
    return f"scale_{customers}_r{round(repeat_scale * 10)}"


def _pg_url(pg_url: str, database: str) -> str:
    return f"{pg_url.rsplit('/', 1)[0]}/{database}"


def _pg_exists(pg_url: str, database: str) -> bool:
    import psycopg

    with psycopg.connect(_admin_dsn(pg_url), autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None
        )


def open_store(
    engine: str,
    *,
    customers: int = 1_000_000,
    repeat_scale: float = 2.0,
    workdir: Path = DEFAULT_WORKDIR,
    pg_url: str = DEFAULT_PG_URL,
    build: bool = True,
    say=print,
) -> Store:
    """The kept store of this size, built first when it does not exist (or raises when `build` is off)."""
    name = store_name(customers=customers, repeat_scale=repeat_scale)
    if engine == "sqlite":
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"{name}.db"
        url = f"sqlite:///{path.resolve()}"
        location = str(path)
        exists = path.exists()
    elif engine == "postgres":
        url = _pg_url(pg_url, f"siyu_{name}")
        location = f"siyu_{name}"
        exists = _pg_exists(pg_url, location)
    else:
        raise ValueError(f"unknown engine {engine!r}: sqlite or postgres")
    if exists:
        db = Database(url)
        try:
            workspace_id = demo.find_demo(db)
        finally:
            db.dispose()
        if workspace_id is not None:
            return Store(engine, url, workspace_id, location)
        say(f"{location} exists but holds no complete demo brand: rebuilding it")
        _drop(engine, location, pg_url)
    if not build:
        raise SystemExit(f"no store {location}: build it with bench/scale_store.py")
    if engine == "postgres":
        import psycopg

        with psycopg.connect(_admin_dsn(pg_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{location}"')
    started = time.perf_counter()
    migrate.upgrade(url)
    db = Database(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            built = demo.build_demo(
                db,
                directory=Path(tmp),
                customers=customers,
                repeat_scale=repeat_scale,
                report=lambda line: say(f"  {line}", flush=True),
                orders_per_import=ORDERS_PER_IMPORT,
            )
    except BaseException:
        db.dispose()
        _drop(engine, location, pg_url)
        raise
    db.dispose()
    say(f"built {location} in {time.perf_counter() - started:.0f} s")
    return Store(engine, url, built.workspace_id, location)


def _drop(engine: str, location: str, pg_url: str) -> None:
    if engine == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{location}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(_admin_dsn(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{location}" WITH (FORCE)')


def copy_store(store: Store, *, suffix: str, pg_url: str = DEFAULT_PG_URL) -> Store:
    """A writable copy of the kept store (drop it with `drop_copy`)."""
    if store.engine == "sqlite":
        source = Path(store.name)
        with sqlite3.connect(source) as conn:  # fold the WAL into the file before copying it
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        target = source.with_name(f"{source.stem}-{suffix}.db")
        shutil.copyfile(source, target)
        return Store("sqlite", f"sqlite:///{target.resolve()}", store.workspace_id, str(target))
    import psycopg

    target_name = f"{store.name}_{suffix}"
    with psycopg.connect(_admin_dsn(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target_name}" TEMPLATE "{store.name}"')
    return Store("postgres", _pg_url(pg_url, target_name), store.workspace_id, target_name)


def drop_copy(store: Store, *, pg_url: str = DEFAULT_PG_URL) -> None:
    _drop(store.engine, store.name, pg_url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat-scale", type=float, default=2.0)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    print(machine())
    for engine in args.engines.split(","):
        started = time.perf_counter()
        store = open_store(
            engine,
            customers=args.customers,
            repeat_scale=args.repeat_scale,
            workdir=args.workdir,
            pg_url=args.pg_url,
        )
        db = Database(store.url)
        try:
            with db.reader() as session:
                from sqlalchemy import text

                counts = {
                    table: session.execute(
                        text(f"SELECT count(*) FROM {table} WHERE workspace_id = :w"),
                        {"w": store.workspace_id},
                    ).scalar_one()
                    for table in ("customer", "customer_order", "order_line", "customer_event")
                }
        finally:
            db.dispose()
        print(
            f"{engine}: {store.name} workspace {store.workspace_id}: "
            + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            + f" ({time.perf_counter() - started:.0f} s)"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
