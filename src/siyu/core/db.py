"""Database plumbing: the declarative base, column types, engines and the unit of work.

SQLite (embedded, WAL) and PostgreSQL are both first-class; code that needs dialect-specific SQL asks
`is_postgres(session)`. Services never commit: the entry point (API request, CLI command, worker) opens
one transaction with `transaction()` and every write of a verb lands in it or not at all.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.types import TypeDecorator

SQLITE_MMAP_BYTES = 1 << 30  # address space only: pages are shared with the OS page cache
SQLITE_WRITE = "siyu_sqlite_write"  # execution option: begin with BEGIN IMMEDIATE (default) or BEGIN

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Integer primary keys: BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrementing) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both engines; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; siyu stores timezone-aware UTC times only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # the driver's own implicit BEGIN is turned off: SQLAlchemy's "begin" event emits it (_sqlite_begin)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # Reads map the file instead of copying pages into each connection's own cache: every pooled
    # connection shares the OS page cache, so a lookup on a connection that was idle stays warm.
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # A write transaction takes the write lock when it begins (BEGIN IMMEDIATE), waiting up to the busy
    # timeout for it. A deferred transaction that reads first and writes later cannot wait: SQLite fails
    # it at once with "database is locked" when another writer committed in between.
    write = conn.get_execution_options().get(SQLITE_WRITE, True)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str, *, pool_size: int = 24, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL mode, foreign keys and a busy timeout on every connection."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # The web app admits at most `max_concurrent_requests` requests at once (web/app.py), each holding
    # at most one connection, plus background work: a pool of that size never makes a request wait for a
    # connection. A wait could deadlock, since FastAPI runs a request's dependencies and handler on
    # different threads, and an unbounded pool exhausts PostgreSQL's max_connections under overload.
    kwargs.setdefault("pool_size", pool_size)
    kwargs.setdefault("max_overflow", max(4, pool_size // 2))
    # the most recently returned connection first: a few warm connections serve a steady load, and the
    # rest of the pool stays idle instead of every connection going cold in turn
    kwargs.setdefault("pool_use_lifo", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, *, pool_size: int = 24, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # the same pool with the begin mode set: SQLite's write lock up front or not; and reads that need
        # no snapshot, which on PostgreSQL run in autocommit (no BEGIN and COMMIT round trips)
        self._sessions_by_mode = {
            (write, snapshot): sessionmaker(
                self.engine.execution_options(**self._begin_options(write=write, snapshot=snapshot)),
                expire_on_commit=False,
            )
            for write, snapshot in ((True, True), (False, True), (False, False))
        }

    def _begin_options(self, *, write: bool, snapshot: bool) -> dict[str, Any]:
        if not self.is_postgres:
            return {SQLITE_WRITE: write}
        return {} if snapshot else {"isolation_level": "AUTOCOMMIT"}

    def session(self, *, write: bool = True, snapshot: bool = True) -> Session:
        """A new session that takes a connection only when it first runs a statement; the caller commits
        (or rolls back) and closes it.

        `write=False`: it only reads; on SQLite its transaction begins without the write lock.
        `snapshot=False` (reads only): each statement may see the latest committed data instead of one
        snapshot for the whole session; on PostgreSQL the session then runs in autocommit, saving two
        round trips, and its commit costs no I/O. Web requests that only read use it, like Django's
        default; code that reads several statements that must agree keeps the snapshot.
        """
        if write and not snapshot:
            raise ValueError("a session that writes keeps its transaction (snapshot=True)")
        return self._sessions_by_mode[(write, snapshot)]()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back everything on any exception.

        `write=False` marks a unit that only reads: on SQLite it does not take the write lock up front.
        """
        with self.session(write=write) as session, session.begin():
            yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A session for reads only."""
        with self.transaction(write=False) as session:
            yield session

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def dispose(self) -> None:
        self.engine.dispose()


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# how many values `among` may be given at once: an IN list on SQLite stays under its variable limit; one
# array parameter on PostgreSQL can hold a whole chunk of a broadcast
IN_CHUNK = 1000
ARRAY_CHUNK = 50_000


def among_chunk(session: Session) -> int:
    """How many values to pass to `among` per statement on this session's database."""
    return ARRAY_CHUNK if is_postgres(session) else IN_CHUNK


class _IntegerArrayLiteral(TypeDecorator[str]):
    """A BIGINT[] parameter given as its literal text ('{1,2,3}'). Rendered `%(p)s::BIGINT[]`, the driver
    sends the string untyped and PostgreSQL types the parameter as the array, parsed once at bind time;
    a string cast in SQL instead (`CAST(p AS BIGINT[])`) is parsed again for every row `= ANY` tests."""

    impl = ARRAY(BigInteger())
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:  # type: ignore[override]
        return None  # the literal goes as it is (the array type's processor would split the string)


class _TextArrayLiteral(_IntegerArrayLiteral):
    """A VARCHAR[] parameter given as its literal text, as `_IntegerArrayLiteral`."""

    impl = ARRAY(String())
    cache_ok = True


def text_array(values: Iterable[str | None]) -> str:
    """Strings as one PostgreSQL array literal, each element quoted (backslash and double quote escaped)
    and None as NULL, for a parameter typed VARCHAR[] (or cast to another type's array: TIMESTAMPTZ[],
    JSONB[]): one string for the driver to send, as `integer_array`."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
        )
        + "}"
    )


def integer_array(values: Iterable[int]) -> str:
    """Integers as one PostgreSQL array literal ('{1,2,3}'), for a parameter cast to BIGINT[]: the driver
    then sends one string, where adapting a list costs it microseconds per element (a broadcast's chunk
    holds tens of thousands). Anything but an integer is refused."""
    return "{" + ",".join(map(str, map(operator.index, values))) + "}"


def integer_array_parameter(name: str) -> Any:
    """A named BIGINT[] parameter of a `text()` statement, given `integer_array(...)` as its value:
    `text(...).bindparams(integer_array_parameter("ids"))`, then `:ids` where the array goes."""
    return bindparam(name, type_=_IntegerArrayLiteral())


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(:array)`, one parameter however many values, so
    neither SQLAlchemy nor the driver renders and parses the statement per value (a string column gets
    a text array, any other an integer one, either sent as one array literal)."""
    if is_postgres(session):
        if isinstance(column.type, String):
            literal = bindparam(None, text_array(values), type_=_TextArrayLiteral())
        else:
            literal = bindparam(None, integer_array(values), type_=_IntegerArrayLiteral())
        return cast(ColumnElement[bool], column == any_(literal))
    return cast(ColumnElement[bool], column.in_(values))


def unindexed(session: Session, column: Any) -> Any:
    """`column`, kept from driving an index on SQLite (its documented unary `+`, which disqualifies a
    term from index use), unchanged elsewhere. For a range test on a table joined to a materialised
    subquery: with the range usable as an index SQLite may loop over the table's range and scan the
    subquery (which has no index) for every row, a plan quadratic in the data."""
    if is_postgres(session):
        return column
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def days_between(session: Session, later: Any, earlier: Any) -> Any:
    """(later − earlier) in days, as a number, in the dialect's own date arithmetic (SQL expressions)."""
    if is_postgres(session):
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


_default: Database | None = None


def get_database() -> Database:
    """The process-wide database built from settings (created on first use)."""
    global _default
    if _default is None:
        from siyu.core.config import get_settings

        settings = get_settings()
        _default = Database(settings.database_url, pool_size=settings.max_concurrent_requests)
    return _default


def set_database(database: Database | None) -> None:
    """Replace the process-wide database (tests, CLI `--database`)."""
    global _default
    _default = database
