"""Apache Spark as an engine of SQLAlchemy: a small DB-API over a SparkSession and a PostgreSQL dialect
on top, so the metrics' own statements (compiled for PostgreSQL, then transpiled by sqlglot) run with
`spark.sql` over temporary views of a Parquet export, through an ordinary read-only `Session`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from siyu.analytics.export import Manifest, read_manifest
from siyu.analytics.transpile import to_spark_sql
from siyu.auth.service import Actor, Role
from siyu.core.errors import ValidationFailed

LOCAL_MASTER = "local[2]"


class Error(Exception):
    """DB-API errors of the Spark engine (a statement Spark refused)."""


class _DBAPI(SimpleNamespace):
    """The module-level names of PEP 249 that SQLAlchemy reads."""


DBAPI = _DBAPI(
    paramstyle="named",
    apilevel="2.0",
    threadsafety=1,
    Error=Error,
    Warning=Warning,
    InterfaceError=Error,
    DatabaseError=Error,
    OperationalError=Error,
    ProgrammingError=Error,
    IntegrityError=Error,
    DataError=Error,
    NotSupportedError=Error,
    InternalError=Error,
)


def _python_value(value: Any) -> Any:
    # PySpark hands TIMESTAMP values back as naive times in the Python process's own zone
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.astimezone(UTC)
    return value


class Cursor:
    """A PEP 249 cursor that runs each statement with `spark.sql` and holds its rows."""

    arraysize = 1

    def __init__(self, spark: Any) -> None:
        self._spark = spark
        self._rows: list[tuple[Any, ...]] = []
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1

    def execute(self, statement: str, parameters: Mapping[str, Any] | Sequence[Any] | None = None) -> None:
        if parameters is not None and not isinstance(parameters, Mapping):
            if parameters:
                raise Error("the Spark engine takes named parameters only")
            parameters = None
        sql = to_spark_sql(statement, parameters)
        try:
            frame = self._spark.sql(sql)
            rows = frame.collect()
        except Exception as exc:  # Spark's own errors (analysis, execution) reach the caller as DB-API errors
            raise Error(f"{exc}\n[Spark SQL] {sql}") from exc
        names = frame.columns
        self.description = [(name, None, None, None, None, None, True) for name in names]
        self._rows = [tuple(_python_value(v) for v in row) for row in rows]
        self.rowcount = len(self._rows)

    def executemany(self, statement: str, seq_of_parameters: Sequence[Any]) -> None:
        raise Error("the Spark engine only reads")

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        size = size or self.arraysize
        taken, self._rows = self._rows[:size], self._rows[size:]
        return taken

    def fetchall(self) -> list[tuple[Any, ...]]:
        taken, self._rows = self._rows, []
        return taken

    def close(self) -> None:
        self._rows = []

    def setinputsizes(self, *_args: Any) -> None:
        return None

    def setoutputsize(self, *_args: Any) -> None:
        return None


class Connection:
    """A PEP 249 connection over one SparkSession; reads only, so commit and rollback do nothing."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def cursor(self) -> Cursor:
        return Cursor(self.spark)

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None

    def close(self) -> None:
        return None


class SparkDialect(PGDialect):
    """PostgreSQL's SQL compiler, Spark's execution: every dialect branch of siyu (`core.db.is_postgres`)
    takes its PostgreSQL form, which `transpile` turns into Spark SQL."""

    driver = "spark"
    supports_statement_cache = True
    default_paramstyle = "named"
    supports_native_boolean = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return DBAPI

    def initialize(self, connection: Any) -> None:
        # nothing to ask the server: the version PostgreSQL would report decides only DDL features
        self.server_version_info = (16, 0)
        self.default_schema_name = None
        self.default_isolation_level = None
        self._backslash_escapes = False
        self.supports_identity_columns = True
        self._supports_drop_index_concurrently = True
        self.supports_smallserial = True
        self._supports_jsonb_subscripting = True

    def do_rollback(self, dbapi_connection: Any) -> None:
        return None

    def do_commit(self, dbapi_connection: Any) -> None:
        return None

    def do_ping(self, dbapi_connection: Any) -> bool:
        return True

    def get_isolation_level(self, dbapi_connection: Any) -> Any:
        return "READ COMMITTED"

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        return None

    def reset_isolation_level(self, dbapi_connection: Any) -> None:
        return None


registry.register("postgresql.spark", __name__, "SparkDialect")

_sessions_lock = threading.Lock()
_base_sessions: dict[str, Any] = {}


def spark_session(master: str = LOCAL_MASTER, *, conf: Mapping[str, str] | None = None) -> Any:
    """The process's SparkSession for `master`: `local[N]` (an embedded Spark, for tests and one machine)
    or `sc://host:15002` (Spark Connect to a brand's cluster), with Spark settings `conf` (only the first
    call's count). Built once per process and master; the session time zone is UTC, as the store's times
    are."""
    try:
        from pyspark.sql import SparkSession
    except ModuleNotFoundError:
        raise ValidationFailed(
            "the Spark engine needs pyspark", where="--engine", hint="pip install 'siyu[spark]'"
        ) from None
    with _sessions_lock:
        if master in _base_sessions:
            return _base_sessions[master]
        builder = SparkSession.builder.appName("siyu-analytics")
        for key, value in (conf or {}).items():
            builder = builder.config(key, value)
        builder = builder.config("spark.sql.session.timeZone", "UTC")
        if master.startswith("sc://"):
            spark = builder.remote(master).getOrCreate()
        else:
            spark = (
                builder.master(master)
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .getOrCreate()
            )
            spark.sparkContext.setLogLevel("ERROR")
        _base_sessions[master] = spark
        return spark


def _spark_type(polars_type: str) -> str:
    if polars_type.startswith("Datetime"):
        return "TIMESTAMP"
    types = {"Int64": "BIGINT", "String": "STRING", "Boolean": "BOOLEAN", "Date": "DATE", "Float64": "DOUBLE"}
    if polars_type not in types:
        raise ValidationFailed(f"no Spark type for the exported type {polars_type}", where="manifest.json")
    return types[polars_type]


def _spark_schema(columns: Mapping[str, str]) -> str:
    return ", ".join(f"`{name}` {_spark_type(kind)}" for name, kind in columns.items())


class SparkStore:
    """A Parquet export seen through Spark: its tables as temporary views of their own Spark session,
    and read-only SQLAlchemy sessions whose statements run there."""

    def __init__(self, directory: Path | str, *, master: str = LOCAL_MASTER) -> None:
        self.location = str(directory)
        self.manifest: Manifest = read_manifest(Path(self.location))
        base = spark_session(master)
        # a session of its own: its views do not clash with another export's (local mode shares the
        # SparkContext; a Spark Connect client opens a session per store)
        self.spark = base.newSession() if not master.startswith("sc://") else base
        for name, table in self.manifest.tables.items():
            # the manifest's schema, so Spark reads no file footers before the first statement
            reader = self.spark.read.schema(_spark_schema(table.columns))
            reader.parquet(f"{self.location.rstrip('/')}/{name}").createOrReplaceTempView(name)
        self.engine: Engine = create_engine(
            "postgresql+spark://", creator=lambda: Connection(self.spark), poolclass=StaticPool
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def workspace_id(self) -> int:
        return self.manifest.workspace_id

    def actor(self) -> Actor:
        """Who reads an export: an analyst of the exported workspace (the export holds no members)."""
        return Actor(
            user_id=0,
            workspace_id=self.manifest.workspace_id,
            role=Role.ANALYST,
            display_name=f"Parquet export of {self.manifest.workspace_slug}",
            via="cli",
        )

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A session for reads only, like `Database.reader()` of the store."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
