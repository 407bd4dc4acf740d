"""Peak memory and throughput of one orders import, each run in a fresh child process.

The file is the one `bench_import.py` writes (one row per order, Chinese headers). For each engine the
parent makes a fresh database and workspace, then a child process runs `import_file` alone and reports
its peak resident set (`getrusage(RUSAGE_SELF).ru_maxrss`, and the kernel's VmHWM) before and after the
import, the seconds and the rows/s. Linux carries ru_maxrss over from the parent through fork and exec,
so the parent stays small: the CSV is written by a child of its own. `--src` runs the child against another checkout's `src/` (e.g. `git archive` of a baseline),
so that before and after come from the same command. Nothing is asserted.

    .venv/bin/python bench/bench_import_memory.py --orders 2000000
    .venv/bin/python bench/bench_import_memory.py --orders 2000000 --src /tmp/base/src --engines sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_PG_URL, create_brand_workspace, fresh_database, machine

WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench_import import write_orders_csv
print(write_orders_csv(Path(sys.argv[2]), orders=int(sys.argv[3]), seed=int(sys.argv[4])))
"""

CHILD = """
import json, resource, sys, time
from pathlib import Path
from siyu.core.db import Database
from siyu.ingest import service

url, workspace_id, path, rejects = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
db = Database(url)
with db.reader() as session:  # connect and load the modules before the baseline is taken
    pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
job = service.import_file(db, workspace_id=workspace_id, kind="orders", path=path, reject_file=rejects,
                          source="bench")
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"hwm_kb": hwm, "status": job.status, "rows": job.total_rows, "inserted": job.inserted_rows,
                  "rejected": job.rejected_rows, "seconds": seconds, "before_kb": before, "peak_kb": peak}))
"""


def run_child(url: str, workspace_id: int, path: Path, workdir: Path, src: Path | None) -> dict[str, object]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src.resolve()), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(workspace_id), str(path), str(workdir / "memory-rejects.csv")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=2_000_000, help="orders in the CSV (one row each)")
    parser.add_argument("--engines", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (a database on it is used)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("var/bench"), help="CSV and SQLite files go here"
    )
    parser.add_argument("--src", type=Path, default=None, help="run the import from this src/ directory")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"orders-memory-{args.orders}.csv"
    started = time.perf_counter()
    written = subprocess.run(
        [
            sys.executable,
            "-c",
            WRITER,
            str(Path(__file__).parent),
            str(path),
            str(args.orders),
            str(args.seed),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    people = int(written.stdout.strip().splitlines()[-1])
    print(machine())
    print(
        f"file: {path} — {args.orders} orders, {people} customers, {path.stat().st_size / 1e6:.0f} MB, "
        f"written in {time.perf_counter() - started:.1f}s; code: {args.src or 'this checkout'}"
    )
    print(
        f"{'engine':<9} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'RSS before':>11} {'peak RSS':>9} {'VmHWM':>8}  status"
    )
    try:
        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            with fresh_database(engine, workdir=args.workdir, pg_url=args.pg_url) as db:
                workspace_id, _ = create_brand_workspace(db, slug=f"memory-{engine}")
                url = db.engine.url.render_as_string(hide_password=False)
                db.dispose()
                r = run_child(url, workspace_id, path, args.workdir, args.src)
            seconds = float(str(r["seconds"]))
            print(
                f"{engine:<9} {args.orders:>9} {seconds:>8.1f} {args.orders / seconds:>9,.0f} "
                f"{int(str(r['before_kb'])) / 1024:>8.0f} MB {int(str(r['peak_kb'])) / 1024:>6.0f} MB "
                f"{int(str(r['hwm_kb'])) / 1024:>5.0f} MB  "
                f"{r['status']}, inserted {r['inserted']}, rejected {r['rejected']}",
                flush=True,
            )
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
