"""Shared set-up for the benchmarks: fresh databases (SQLite file / PostgreSQL `siyu_bench_*`) and a workspace.

Benchmarks print figures; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.channels import service as channels
from siyu.core import migrate
from siyu.core.db import Database
from siyu.customers.identity_values import is_junk_phone_national
from siyu.demo import generator
from siyu.workspaces import service as workspaces

DEFAULT_PG_URL = os.environ.get("SIYU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def machine() -> str:
    """One line about where the figures come from."""
    load = os.getloadavg()
    return (
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def _admin_dsn(pg_url: str) -> str:
    return pg_url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def fresh_database(
    engine: str, *, workdir: Path, pg_url: str = DEFAULT_PG_URL, keep: bool = False
) -> Iterator[Database]:
    """A new, migrated database: a SQLite file under `workdir`, or a PostgreSQL database `siyu_bench_*`
    that is dropped afterwards (unless `keep`)."""
    name = f"siyu_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    if engine == "sqlite":
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"{name}.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        db = Database(url)
        try:
            yield db
        finally:
            db.dispose()
            if not keep:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if engine != "postgres":
        raise ValueError(f"unknown engine {engine!r}: sqlite or postgres")
    import psycopg

    with psycopg.connect(_admin_dsn(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{pg_url.rsplit('/', 1)[0]}/{name}"
    try:
        migrate.upgrade(url)
        db = Database(url)
        try:
            yield db
        finally:
            db.dispose()
    finally:
        if not keep:
            with psycopg.connect(_admin_dsn(pg_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_brand_workspace(db: Database, *, slug: str) -> tuple[int, int]:
    """A workspace with the demo brand's channels and stores and an owner; returns (workspace_id, owner_id)."""
    with db.transaction() as session:
        workspace = workspaces.create_workspace(session, slug=slug, name=f"bench {slug}")
        user = auth.create_user(
            session, email=f"owner@{slug}.bench.local", password="bench-password", display_name="bench"
        )
        auth.add_member(session, workspace_id=workspace.id, user_id=user.id, role=Role.OWNER)
        for spec in generator.CHANNELS:
            channels.create_channel(
                session,
                workspace_id=workspace.id,
                key=spec.key,
                name=spec.name,
                source_type=spec.source_type,
                aliases=spec.aliases,
            )
        for store in generator.STORES:
            channels.create_store(
                session, workspace_id=workspace.id, code=store.code, name=store.name, city=store.city
            )
        return workspace.id, user.id


def distinct_phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` distinct 11-digit CN mobile numbers as int64 (none a placeholder the importer would drop)."""
    prefixes = np.array([135, 136, 137, 138, 139, 150, 151, 152, 158, 159, 186, 187, 188, 189])
    out = np.zeros(0, dtype=np.int64)
    while out.size < n:
        want = int((n - out.size) * 1.1) + 100
        draw = prefixes[rng.integers(0, prefixes.size, want)].astype(np.int64) * 100_000_000 + rng.integers(
            0, 100_000_000, want
        )
        draw = draw[[not is_junk_phone_national(str(v)) for v in draw.tolist()]]
        out = np.concatenate([out, draw])
        _, first = np.unique(out, return_index=True)
        out = out[np.sort(first)]
    return out[:n]


def run_baseline(script: str, ref: str, arguments: list[str]) -> dict[str, Any]:
    """Run a bench script with the code of another commit (a detached worktree of `ref` on PYTHONPATH;
    processes it spawns inherit it) and the same `arguments` plus `--json`; print its output and return
    the figures of its last line."""
    root = Path(__file__).resolve().parent.parent
    tree = Path(tempfile.mkdtemp()) / "baseline"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), ref], check=True)
    try:
        env = {**os.environ, "PYTHONPATH": str(tree / "src")}
        command = [sys.executable, str(Path(script).resolve()), *arguments, "--json"]
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        print(done.stdout, end="")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False)


def side_by_side(
    script: str, args: Any, arguments: list[str], measure: Callable[[Any], dict[str, Any]]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The figures of `args.baseline` (when given: `run_baseline` with `arguments`) and of this checkout
    (`measure(args)`), printed as they come; with `args.json` this checkout's also as a last JSON line,
    for a run that is itself someone's baseline."""
    before = None
    if args.baseline:
        print(f"--- baseline: {args.baseline}", flush=True)
        before = run_baseline(script, args.baseline, arguments)
        print("--- this checkout", flush=True)
    after = measure(args)
    if args.json:
        print(json.dumps(after))
    return before, after
