"""How exactly delivery honours a provider rate limit: messages of one channel go through the signed
webhook adapter to a local receiver (a process of its own that records when each request arrives),
with the policy's rate limit R, by 1 and 2 `Worker`s in threads; a run without a limit is the baseline.

    .venv/bin/python bench/bench_delivery_rate.py                         # SQLite then PostgreSQL, R 20 and 100
    .venv/bin/python bench/bench_delivery_rate.py --engines sqlite --rates 50 --workers 2 --seconds 10

Each run queues R·`--seconds` messages (`--messages` for the baseline) and prints the achieved rate over
the steady part — first arrival + 1 s (warm-up: the bucket starts full) to the last — and the most
arrivals in any sliding 1-s window of that part, their ratios to R, whether the steady rate is within
±2 %, and whether every message arrived exactly once (by idempotency key).
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common import DEFAULT_PG_URL, create_brand_workspace, fresh_database, machine
from sqlalchemy import func, insert, select

from siyu.auth import service as auth
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.customers.models import Customer
from siyu.reach import service as reach
from siyu.reach.adapters.registry import Adapters
from siyu.reach.adapters.webhook import WebhookAdapter
from siyu.reach.models import ReachMessage
from siyu.reach.tasks import Worker

SECRET = "bench-secret"
TOLERANCE = 0.02
WARM_UP = 1.0


def _receive(conn: Connection) -> None:
    """The receiver process: answers every POST with 200 and records (arrival, key); on "stop" it sends
    what it recorded back through `conn`."""
    arrivals: list[tuple[float, str]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection per worker
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            at = time.monotonic()  # CLOCK_MONOTONIC: one clock for the whole machine
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                arrivals.append((at, self.headers["Idempotency-Key"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(server.server_address[1])
    while True:
        command = conn.recv()
        with lock:
            conn.send(list(arrivals))
            if command == "reset":
                arrivals.clear()
        if command == "stop":
            break
    server.shutdown()


@dataclass
class Figures:
    arrived: int
    distinct: int
    steady_rate: float
    window_max: int
    seconds: float


def measure(times: list[float]) -> tuple[float, int]:
    """(steady rate, most arrivals in a 1-s window) of sorted arrival times, after the warm-up."""
    steady = [t for t in times if t >= times[0] + WARM_UP]
    if len(steady) < 2:
        return float("nan"), len(steady)
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    windows = [bisect.bisect_left(steady, t + 1.0) - i for i, t in enumerate(steady) if t + 1.0 <= steady[-1]]
    return rate, max(windows, default=len(steady))


def _queue(db: Database, workspace_id: int, count: int, ref: str) -> None:
    now = utcnow()
    with db.transaction() as session:
        first = session.scalar(select(func.coalesce(func.max(Customer.id), 0)))
        session.execute(
            insert(Customer),
            [{"workspace_id": workspace_id, "name": f"{ref}-{n}", "gender": "unknown", "attributes": {},
              "created_at": now, "updated_at": now} for n in range(count)],
        )  # fmt: skip
        ids = list(
            session.scalars(
                select(Customer.id).where(Customer.workspace_id == workspace_id, Customer.id > first)
            )
        )
        reach.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=ids,
            content={"webhook": {"text": "春茶上新"}}, purpose="transactional", channel_preference=["webhook"],
        )  # fmt: skip


def run(
    db: Database,
    conn: Connection,
    *,
    url: str,
    workspace_id: int,
    owner_id: int,
    rate: float | None,
    workers: int,
    count: int,
    ref: str,
    poll_seconds: float,
    batch_size: int,
) -> Figures:
    with db.transaction() as session:
        actor = auth.actor_for(session, user_id=owner_id, workspace_id=workspace_id)
        reach.update_policy(session, actor=actor, changes={"rate_limits": {"webhook": rate} if rate else {}})
    _queue(db, workspace_id, count, ref)
    conn.send("reset")
    conn.recv()
    stop = threading.Event()
    adapters = [WebhookAdapter(url=url, secret=SECRET) for _ in range(workers)]
    loops = [
        Worker(db, Adapters({"webhook": adapter}), workspace_id=workspace_id, poll_seconds=poll_seconds,
               batch_size=batch_size, name=f"bench-{n}")
        for n, adapter in enumerate(adapters)
    ]  # fmt: skip
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in loops]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    deadline = started + max(60.0, 3 * count / (rate or 1000))
    while time.monotonic() < deadline:
        with db.reader() as session:
            waiting = session.scalar(
                select(func.count())
                .select_from(ReachMessage)
                .where(ReachMessage.source_ref == ref, ReachMessage.status != "sent")
            )
        if not waiting:
            break
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(30)
    for adapter in adapters:
        adapter.close()
    conn.send("read")
    arrivals: list[tuple[float, str]] = conn.recv()
    times = sorted(t for t, _ in arrivals)
    keys = Counter(key for _, key in arrivals)
    steady, window = measure(times) if times else (float("nan"), 0)
    return Figures(
        arrived=len(arrivals),
        distinct=len(keys),
        steady_rate=steady,
        window_max=window,
        seconds=(times[-1] - times[0]) if times else 0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--rates", default="20,100", help="rate limits R to measure, messages per second")
    parser.add_argument("--workers", default="1,2", help="how many workers, e.g. 1,2")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="each limited run queues R·seconds messages"
    )
    parser.add_argument("--messages", type=int, default=3000, help="messages of the baseline (no limit)")
    parser.add_argument(
        "--poll-seconds", type=float, default=1.0, help="the workers' idle wait (default 1 s)"
    )
    parser.add_argument("--batch-size", type=int, default=50, help="messages a worker claims at once")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    counts = [int(w) for w in args.workers.split(",")]
    print(machine())
    parent, child = multiprocessing.Pipe()
    receiver = multiprocessing.Process(target=_receive, args=(child,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{parent.recv()}/hook"
    header = (
        f"{'engine':<10} {'workers':>7} {'R/s':>6} {'messages':>8} {'arrived':>7} {'once':>4} "
        f"{'steady/s':>9} {'× R':>6} {'±2 %':>5} {'max 1 s':>7} {'× R':>6} {'seconds':>7}"
    )
    try:
        for engine in args.engines.split(","):
            with fresh_database(engine, workdir=Path(tempfile.mkdtemp()), pg_url=args.pg_url) as db:
                workspace_id, owner_id = create_brand_workspace(db, slug="rate")
                print(header)
                for workers in counts:
                    for rate in [None, *rates]:
                        count = args.messages if rate is None else int(rate * args.seconds)
                        ref = f"rate-{workers}-{rate or 'none'}"
                        figures = run(
                            db, parent, url=url, workspace_id=workspace_id, owner_id=owner_id, rate=rate,
                            workers=workers, count=count, ref=ref, poll_seconds=args.poll_seconds,
                            batch_size=args.batch_size,
                        )  # fmt: skip
                        once = figures.arrived == figures.distinct == count
                        if rate is None:
                            ratio, within, window_ratio = "", "", ""
                        else:
                            ratio = f"{figures.steady_rate / rate:.3f}"
                            within = "yes" if abs(figures.steady_rate / rate - 1) <= TOLERANCE else "no"
                            window_ratio = f"{figures.window_max / rate:.3f}"
                        print(
                            f"{engine:<10} {workers:>7} {rate or 'none':>6} {count:>8} {figures.arrived:>7} "
                            f"{'yes' if once else 'NO':>4} {figures.steady_rate:>9.2f} {ratio:>6} {within:>5} "
                            f"{figures.window_max:>7} {window_ratio:>6} {figures.seconds:>7.1f}",
                            flush=True,
                        )
    finally:
        parent.send("stop")
        parent.recv()
        receiver.join(5)
    print(machine())


if __name__ == "__main__":
    main()
