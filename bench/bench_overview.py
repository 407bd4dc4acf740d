"""The overview page on the demo brand: how long /overview takes to render on SQLite and PostgreSQL.

Builds the demo brand (through the importer, as `siyu demo` does) in a fresh database per engine, scores
RFM and sweeps lifecycle stages at the newest order (so every block of the page has figures), logs the
owner in through an in-process client and requests the page several times, printing the best and the
median time and the number of SQL statements per request against the 1 s target (issue 4).

    .venv/bin/python bench/bench_overview.py                      # 100 000 customers, SQLite then PostgreSQL
    .venv/bin/python bench/bench_overview.py --customers 20000 --engines sqlite
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from common import DEFAULT_PG_URL, fresh_database, machine
from fastapi.testclient import TestClient
from sqlalchemy import event

from siyu.auth import service as auth
from siyu.demo import service as demo
from siyu.lifecycle import service as lifecycle
from siyu.orders import service as orders
from siyu.rfm import service as rfm
from siyu.web.app import create_app

TARGET_SECONDS = 1.0
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


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
        with db.transaction() as session:
            actor = auth.command_line_actor(session, workspace_id=build.workspace_id)
            now = orders.last_order_at(session, workspace_id=build.workspace_id)
            step = time.perf_counter()
            scored = rfm.compute_rfm(session, actor=actor, now=now).scored
            swept = lifecycle.sweep(session, actor=actor, now=now).customers
            print(
                f"{engine}: RFM ({scored} scored) and lifecycle ({swept}) in {time.perf_counter() - step:.1f}s"
            )
        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        with TestClient(create_app(db)) as client:
            token = _CSRF.search(client.get("/login").text)
            assert token, "the login page carries no CSRF token"
            owner = build.owner
            client.post(
                "/login",
                data={"email": owner.email, "password": owner.password, "csrf_token": token.group(1)},
                follow_redirects=False,
            )
            client.get("/overview")  # warm: templates compiled, connections opened
            times, per_request = [], 0
            for _ in range(args.repeat):
                statements.clear()
                event.listen(db.engine, "before_cursor_execute", count)
                step = time.perf_counter()
                response = client.get("/overview", params={"months": args.months})
                times.append(time.perf_counter() - step)
                event.remove(db.engine, "before_cursor_execute", count)
                assert response.status_code == 200, response.text[:300]
                per_request = len(statements)
        best, median = min(times), statistics.median(times)
        verdict = "within" if median <= TARGET_SECONDS else "over"
        print(
            f"{engine}: /overview?months={args.months} best {best:.3f}s, median {median:.3f}s of {args.repeat}"
            f" ({per_request} SQL statements) — {verdict} the {TARGET_SECONDS:.0f} s target"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    print(machine())
    for engine in args.engines.split(","):
        run(engine.strip(), args)


if __name__ == "__main__":
    main()
