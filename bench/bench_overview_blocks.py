"""Each block of the overview dashboard, timed on its own, on an existing database (the demo brand).

Build the brand once, then time the blocks against it (best of `--repeat` runs each), with the statements
slower than `--slow` seconds listed:

    .venv/bin/siyu demo --no-serve --database-url sqlite:////tmp/demo50.db
    .venv/bin/python bench/bench_overview_blocks.py sqlite:////tmp/demo50.db

The demo's data ends on 2025-06-30; the dashboard is asked for the 12 months up to then.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import event, select

from siyu.auth import service as auth
from siyu.core.db import Database
from siyu.metrics import service as metrics
from siyu.overview import service as overview
from siyu.workspaces.models import Workspace

TODAY = date(2025, 6, 30)
NOW = datetime(2025, 7, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slow", type=float, default=0.2)
    args = parser.parse_args()
    db = Database(args.database_url)
    slow: list[tuple[float, str]] = []

    def before(conn: Any, _cursor: Any, _statement: str, *_rest: Any) -> None:
        conn.info.setdefault("started", []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        took = time.perf_counter() - conn.info["started"].pop()
        if took > args.slow:
            slow.append((took, " ".join(statement.split())[:200]))

    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    with db.reader() as session:
        workspace_id = session.scalar(select(Workspace.id).order_by(Workspace.id))
        assert workspace_id is not None, "the database holds no workspace: build the demo brand first"
        actor = auth.command_line_actor(session, workspace_id=workspace_id)
        figures = overview.get_overview(session, actor=actor, months=12, today=TODAY)
        assert figures.start is not None and figures.end is not None and figures.last_day is not None
        start, end, last = figures.start, figures.end + timedelta(microseconds=1), figures.last_day
        first_cohort = metrics.period_start(metrics.period_of(last, "month") - 5, "month")
        blocks: dict[str, Callable[[], object]] = {
            "revenue figures": lambda: overview.get_overview(session, actor=actor, months=12, today=TODAY),
            "trend (12 months)": lambda: metrics.trend(
                session, actor=actor, period="month", last=last, points=12, now=NOW
            ),
            "GMV share": lambda: metrics.private_domain_share(session, actor=actor, start=start, end=end),
            "channel ROI": lambda: metrics.channel_roi(session, actor=actor, start=start, end=end),
            "cohorts (6×6)": lambda: metrics.cohort_table(
                session, actor=actor, period="month", first=first_cohort, last=last, horizon=6, now=NOW
            ),
            "whole dashboard": lambda: overview.get_dashboard(
                session, actor=actor, months=12, today=TODAY, now=NOW
            ),
        }
        print(f"{db.engine.dialect.name}, workspace {workspace_id}, best of {args.repeat}:")
        for name, block in blocks.items():
            times = []
            for _ in range(args.repeat):
                step = time.perf_counter()
                block()
                times.append(time.perf_counter() - step)
            print(f"  {name:20s} {min(times):7.2f} s")
    for took, statement in sorted(slow, reverse=True)[:10]:
        print(f"  slow statement {took:6.2f} s  {statement}")


if __name__ == "__main__":
    main()
