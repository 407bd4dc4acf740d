"""Test fixtures: every storage test runs on SQLite and, when one is reachable, on PostgreSQL.

Each test gets its own workspace instead of a cleaned database: workspaces never see each other's
rows, so this is both fast and a standing check of workspace isolation.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from siyu.core import migrate
from siyu.core.db import Database, set_database
from siyu.workspaces import service as workspaces

PG_URL = os.environ.get("SIYU_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SKIPS_FILE = Path(os.environ.get("SIYU_TEST_SKIPS_FILE", ".pytest_skips"))


def _postgres_reachable() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        import psycopg

        dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"


_PG_PROBLEM = _postgres_reachable()
_counter = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL variants of browser tests and of the Spark equality tests (Spark is compared
    with the embedded engine; `SIYU_TEST_SPARK_ON_POSTGRES=1` keeps them; the PostgreSQL export has its
    own test), and the SQLite variants of tests
    marked `postgres` (what they check exists on PostgreSQL only): deselected, not skipped."""
    keep, dropped = [], []
    spark_on_pg = os.environ.get("SIYU_TEST_SPARK_ON_POSTGRES") == "1"
    for item in items:
        params = getattr(item, "callspec", None)
        engine = params.params.get("database") if params is not None else None
        unfit = (
            engine == "postgres"
            and (item.get_closest_marker("browser") or (item.get_closest_marker("spark") and not spark_on_pg))
        ) or (engine == "sqlite" and item.get_closest_marker("postgres"))
        (dropped if unfit else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgres"], indirect=True, scope="session")


def _create_pg_database() -> tuple[str, str]:
    import psycopg

    name = f"siyu_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def _drop_pg_database(name: str) -> None:
    import psycopg

    admin_dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Real argon2, at the lowest cost: tests create many users and need no resistance to cracking."""
    from argon2 import PasswordHasher

    from siyu.auth import service as auth

    original = auth._hasher
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    auth._hasher = original


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A migrated database on the requested engine, shared by the session's tests on that engine."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'siyu.db'}"
        migrate.upgrade(url)
        db = Database(url)
        yield db
        db.dispose()
        return
    if _PG_PROBLEM:
        pytest.skip(_PG_PROBLEM)
    name, url = _create_pg_database()
    try:
        migrate.upgrade(url)
        db = Database(url)
        yield db
        db.dispose()
    finally:
        _drop_pg_database(name)


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    """The database, also installed as the process-wide default for code that asks for it."""
    set_database(database)
    yield database
    set_database(None)


@pytest.fixture
def own_db(database: Database, tmp_path: Path) -> Iterator[Database]:
    """A migrated database of the same engine that no other test writes to, for a process that serves
    every workspace of its deployment (`siyu worker`, the app's worker): in the shared database it
    would also work through the messages other tests left queued."""
    if database.url.startswith("sqlite"):
        url, name = f"sqlite:///{tmp_path / 'own.db'}", None
    else:
        name, url = _create_pg_database()
    try:
        migrate.upgrade(url)
        own = Database(url)
        set_database(own)
        yield own
        set_database(None)
        own.dispose()
    finally:
        if name is not None:
            _drop_pg_database(name)


@pytest.fixture
def workspace_id(db: Database) -> int:
    """A fresh workspace for this test."""
    with db.transaction() as session:
        ws = workspaces.create_workspace(
            session, slug=f"t{next(_counter)}-{uuid.uuid4().hex[:8]}", name="Test"
        )
        return ws.id


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Write the reasons of every skip to a file so `make test` can say plainly what was skipped."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    with contextlib.suppress(OSError):
        SKIPS_FILE.write_text("".join(f"{n}\t{r}\n" for r, n in sorted(reasons.items())), encoding="utf-8")
