"""Customer lookup by phone through the HTTP API at a constant request rate, with 1M customers.

Set-up (bulk SQL, for speed: this measures reads, not the importer) builds or reuses a store of N
customers with a phone identity and a rollup row each. The app runs under uvicorn in a subprocess on
127.0.0.1; a SECOND process (this script with --load) sends `GET /api/customers/lookup?phone=…` open-loop
at the target rate for a bounded time and reports latency percentiles, achieved rate and errors.
Latency is measured from each request's scheduled send time, so a stalled server cannot hide its queue.

    .venv/bin/python bench/bench_lookup.py                          # 1M customers, SQLite, 500 req/s, 20 s
    .venv/bin/python bench/bench_lookup.py --engine postgres --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import DEFAULT_PG_URL, distinct_phones, machine
from sqlalchemy import func, insert, select, text

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.core import migrate
from siyu.core.db import Database
from siyu.customers.models import Customer, CustomerRollup, Identity
from siyu.workspaces import service as workspaces

SLUG = "bench-lookup"
CHUNK = 50_000
MAX_SECONDS = 120  # the load phase never runs longer than this, whatever is asked
MAX_RATE = 5_000


def _database_url(args: argparse.Namespace) -> str:
    if args.engine == "sqlite":
        args.workdir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{args.workdir / f'lookup-{args.customers}.db'}"
    import psycopg

    name = f"siyu_bench_lookup_{args.customers}"
    admin = args.pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{args.pg_url.rsplit('/', 1)[0]}/{name}"


def build_store(db: Database, *, customers: int, seed: int) -> tuple[int, float]:
    """Workspace + N customers with phone identities and rollups, inserted in bulk; reused when present.

    Returns (workspace_id, seconds spent building; 0 when reused)."""
    with db.reader() as session:
        found = session.execute(text("SELECT id FROM workspace WHERE slug = :s"), {"s": SLUG}).scalar()
        if found is not None:
            count = session.scalar(
                select(func.count()).select_from(Customer).where(Customer.workspace_id == found)
            )
            if count == customers:
                return int(found), 0.0
            raise SystemExit(
                f"workspace {SLUG} holds {count} customers, not {customers}: delete the bench database"
            )
    started = time.perf_counter()
    with db.transaction() as session:
        workspace_id = workspaces.create_workspace(session, slug=SLUG, name="lookup benchmark").id
        user = auth.create_user(
            session,
            email=f"owner-{uuid.uuid4().hex[:6]}@bench.local",
            password="bench-password",
            display_name="bench",
        )
        auth.add_member(session, workspace_id=workspace_id, user_id=user.id, role=Role.OWNER)
        first_id = int(session.scalar(select(func.coalesce(func.max(Customer.id), 0))) or 0) + 1
        phones = distinct_phones(np.random.default_rng(seed), customers)
        now = datetime.now(UTC)
        for start in range(0, customers, CHUNK):
            ids = range(first_id + start, first_id + min(start + CHUNK, customers))
            values = phones[start : start + CHUNK].tolist()
            session.execute(
                insert(Customer),
                [
                    {
                        "id": i,
                        "workspace_id": workspace_id,
                        "gender": "unknown",
                        "attributes": {},
                        "created_at": now,
                        "updated_at": now,
                        "name": f"客户{i}",
                    }
                    for i in ids
                ],
            )
            session.execute(
                insert(Identity),
                [
                    {
                        "workspace_id": workspace_id,
                        "customer_id": i,
                        "kind": "phone",
                        "value": f"+86{p}",
                        "source": "bench",
                        "created_at": now,
                    }
                    for i, p in zip(ids, values, strict=True)
                ],
            )
            session.execute(
                insert(CustomerRollup),
                [
                    {
                        "customer_id": i,
                        "workspace_id": workspace_id,
                        "order_count": 3,
                        "gross_revenue_cents": 5400,
                        "refunded_cents": 0,
                        "net_revenue_cents": 5400,
                        "avg_order_value_cents": 1800,
                        "categories": ["奶茶"],
                        "last_order_at": now,
                        "first_order_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
        if db.is_postgres:
            # ids were given explicitly: move the sequence past them for anything inserted later
            session.execute(
                text("SELECT setval(pg_get_serial_sequence('customer', 'id'), max(id)) FROM customer")
            )
    with db.transaction() as session:
        if db.is_postgres:
            session.execute(text("ANALYZE customer"))
            session.execute(text("ANALYZE identity"))
            session.execute(text("ANALYZE customer_rollup"))
        else:
            session.execute(text("ANALYZE"))
    return workspace_id, time.perf_counter() - started


def sample_phones(db: Database, *, workspace_id: int, count: int, seed: int) -> list[str]:
    """Up to `count` phone numbers of the store, picked at random by identity id."""
    with db.reader() as session:
        low, high = session.execute(
            select(func.min(Identity.id), func.max(Identity.id)).where(Identity.workspace_id == workspace_id)
        ).one()
        picks = np.random.default_rng(seed).integers(int(low), int(high) + 1, count).tolist()
        values = session.scalars(
            select(Identity.value).where(
                Identity.workspace_id == workspace_id, Identity.kind == "phone", Identity.id.in_(picks)
            )
        ).all()
    return [v.removeprefix("+86") for v in values]


def start_server(url: str, *, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SIYU_DATABASE_URL": url}
    command = [sys.executable, "-m", "uvicorn", "siyu.web.app:create_app", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(command, env=env)


def server_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds spent so far by the server process and its worker processes (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root_pid or ppid == root_pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_ready(port: int, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the app did not answer on port {port} within {timeout:.0f}s")


async def _load(
    base: str, token: str, phones: list[str], *, rate: float, seconds: float, warmup: float, trace: str | None
) -> dict[str, object]:
    """Open-loop: request i is sent at start + i/rate whatever happened to earlier ones.

    The first `warmup` seconds run at the same rate and are reported apart: each worker opens its pool
    connections and reads its first pages then, as any server does once after a start. The generator's
    own garbage collector is off while it sends, so its pauses are not counted as the server's.

    aiohttp rather than httpx here: at 500 req/s httpx's client spent more CPU than the server (it
    capped out near 280 req/s on this machine), so it measured itself instead of the server.
    """
    import aiohttp

    warm_total = int(rate * warmup)
    total = warm_total + int(rate * seconds)
    latencies = np.full(total, np.nan)
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=5.0)
    gc.collect()
    gc.freeze()
    gc.disable()
    async with aiohttp.ClientSession(base, headers=headers, connector=connector, timeout=timeout) as client:

        async def one(i: int, scheduled: float) -> None:
            try:
                async with client.get(
                    "/api/customers/lookup", params={"phone": phones[i % len(phones)]}
                ) as response:
                    await response.read()
                    if response.status != 200 and i >= warm_total:
                        errors[str(response.status)] = errors.get(str(response.status), 0) + 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                if i >= warm_total:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies[i] = time.perf_counter() - scheduled

        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter() + 0.05
        measured_from = start + warm_total / rate
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        sent_by = time.perf_counter()
        _, pending = await asyncio.wait(tasks, timeout=15.0)
        for task in pending:  # bounded: what has not answered 15 s after the last send is an error
            task.cancel()
        if pending:
            errors["unfinished"] = len(pending)
        finished = time.perf_counter()
    gc.enable()
    if trace:  # one line per request: seconds after the start it was due, latency in ms
        Path(trace).write_text(
            "\n".join(f"{i / rate:.4f} {latencies[i] * 1000:.2f}" for i in range(total)), encoding="utf-8"
        )
    measured = latencies[warm_total:] * 1000
    warm = latencies[:warm_total] * 1000
    measured_count = total - warm_total
    return {
        "requests": measured_count,
        "target_rate": rate,
        "achieved_rate": round(measured_count / (finished - measured_from), 1),
        "send_rate": round(measured_count / (sent_by - measured_from), 1),
        "p50_ms": round(float(np.nanpercentile(measured, 50)), 2),
        "p95_ms": round(float(np.nanpercentile(measured, 95)), 2),
        "p99_ms": round(float(np.nanpercentile(measured, 99)), 2),
        "max_ms": round(float(np.nanmax(measured)), 2),
        "warmup_requests": warm_total,
        "warmup_p99_ms": round(float(np.nanpercentile(warm, 99)), 2) if warm_total else None,
        "errors": errors,
    }


def load_main(args: argparse.Namespace) -> None:
    phones = Path(args.phones).read_text(encoding="utf-8").split()
    token = os.environ["SIYU_BENCH_TOKEN"]
    rate = min(args.rate, MAX_RATE)
    seconds = min(args.duration, MAX_SECONDS)
    result = asyncio.run(
        _load(
            f"http://127.0.0.1:{args.port}",
            token,
            phones,
            rate=rate,
            seconds=seconds,
            warmup=min(args.warmup, MAX_SECONDS),
            trace=args.trace,
        )
    )
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second (open loop)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load (at most 120)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds at the same rate before measuring (reported apart)"
    )
    parser.add_argument("--trace", help="write each request's due time and latency to this file")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the load-generator process
    parser.add_argument("--phones", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args)
        return

    url = _database_url(args)
    migrate.upgrade(url)
    db = Database(url)
    workspace_id, build_seconds = build_store(db, customers=args.customers, seed=args.seed)
    with db.transaction() as session:
        owner_id = session.execute(
            text("SELECT user_id FROM membership WHERE workspace_id = :w AND role = 'owner'"),
            {"w": workspace_id},
        ).scalar_one()
        token, _ = auth.create_api_token(session, workspace_id=workspace_id, user_id=owner_id, name="bench")
    phones = sample_phones(db, workspace_id=workspace_id, count=2000, seed=args.seed)
    db.dispose()
    phones_file = args.workdir / "lookup-phones.txt"
    phones_file.parent.mkdir(parents=True, exist_ok=True)
    phones_file.write_text("\n".join(phones), encoding="utf-8")
    print(machine())
    print(
        f"store: {args.customers} customers on {args.engine} "
        + (f"(built with bulk SQL in {build_seconds:.0f}s)" if build_seconds else "(reused)")
    )

    server = start_server(url, port=args.port, workers=args.workers)
    try:
        wait_ready(args.port)
        load_command = [
            sys.executable,
            __file__,
            "--load",
            "--phones",
            str(phones_file),
            "--port",
            str(args.port),
        ]
        load_command += [
            "--rate",
            str(args.rate),
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
        ]
        if args.trace:
            load_command += ["--trace", args.trace]
        cpu_before = server_cpu_seconds(server.pid)
        load_cpu_before = _children_cpu_seconds()
        load = subprocess.run(
            load_command,
            env={**os.environ, "SIYU_BENCH_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=MAX_SECONDS + 60,
            check=True,
        )
        server_cpu = server_cpu_seconds(server.pid) - cpu_before
        load_cpu = _children_cpu_seconds() - load_cpu_before  # the server is not reaped yet
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    result = json.loads(load.stdout.strip().splitlines()[-1])
    sent = max(int(result["requests"]) + int(result["warmup_requests"]), 1)
    print(
        f"uvicorn workers={args.workers}  target {result['target_rate']:.0f} req/s for {args.duration:.0f}s: "
        f"achieved {result['achieved_rate']} req/s, p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
        f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms, errors {result['errors'] or 0} "
        f"(after {result['warmup_requests']} warm-up requests, p99 {result['warmup_p99_ms']} ms); "
        f"CPU per request: server {server_cpu * 1000 / sent:.2f} ms, load generator {load_cpu * 1000 / sent:.2f} ms"
    )


if __name__ == "__main__":
    main()
