"""Set-based writes for bulk loads: temporary staging tables, fast inserts of frames, id reservation.

SQLite gets `executemany` inside the caller's transaction; PostgreSQL gets COPY over the same connection.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from siyu.core.db import is_postgres

# SQLAlchemy's SQLite DateTime storage format: the strings we write must compare and parse like its own.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S%.6f"


def _sql_type(dtype: pl.DataType, postgres: bool) -> str:
    if dtype.is_integer():
        return "BIGINT"
    if dtype == pl.Boolean:
        return "BOOLEAN"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if postgres else "TEXT"
    if dtype == pl.Date:
        return "DATE" if postgres else "TEXT"
    return "TEXT"


def _for_sqlite(df: pl.DataFrame) -> pl.DataFrame:
    """Datetimes as SQLAlchemy writes them on SQLite (naive UTC text), dates as ISO text, booleans 0/1."""
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC")
            exprs.append(col.dt.strftime(SQLITE_DATETIME).alias(name))
        elif dtype == pl.Date:
            exprs.append(col.dt.strftime("%Y-%m-%d").alias(name))
        elif dtype == pl.Boolean:
            exprs.append(col.cast(pl.Int64).alias(name))
        elif dtype == pl.Null:
            exprs.append(col.cast(pl.Utf8).alias(name))
    return df.with_columns(exprs) if exprs else df


def _for_postgres_csv(df: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name)
            if dtype.time_zone is None:
                col = col.dt.replace_time_zone("UTC")
            else:
                col = col.dt.convert_time_zone("UTC")
            exprs.append(col.dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00:00").alias(name))
    return df.with_columns(exprs) if exprs else df


def insert_frame(session: Session, table: str, df: pl.DataFrame) -> int:
    """Insert every row of `df` into `table` (frame columns = table columns) in the caller's transaction.

    JSON columns must already be JSON text. Nulls stay NULL; empty strings stay empty strings.
    """
    if df.height == 0:
        return 0
    columns = ", ".join(f'"{c}"' for c in df.columns)
    raw: Any = session.connection().connection.driver_connection
    if is_postgres(session):
        buffer = io.BytesIO()
        _for_postgres_csv(df).write_csv(buffer, include_header=False)
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            copy.write(buffer.getvalue())
    else:
        placeholders = ", ".join("?" for _ in df.columns)
        cursor = raw.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", _for_sqlite(df).iter_rows()
            )
        finally:
            cursor.close()
    return df.height


def stage(session: Session, name: str, df: pl.DataFrame) -> str:
    """(Re)create the temporary table `name` shaped like `df` and fill it; returns the table name.

    Temporary tables live on the transaction's connection only, so concurrent imports never see each
    other's staging rows.
    """
    postgres = is_postgres(session)
    columns = ", ".join(f'"{c}" {_sql_type(t, postgres)}' for c, t in df.schema.items())
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    session.execute(text(f"CREATE TEMPORARY TABLE {name} ({columns})"))
    insert_frame(session, name, df)
    if postgres:
        session.execute(text(f"ANALYZE {name}"))
    return name


def drop_stage(session: Session, name: str) -> None:
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))


def reserve_ids(session: Session, table: str, count: int) -> list[int]:
    """`count` fresh primary keys for `table`, to insert rows with known ids (so children can refer to them).

    PostgreSQL draws them from the table's sequence. SQLite continues after the largest id: its writers
    are serialised, and a transaction whose snapshot went stale fails with SQLITE_BUSY instead of
    reusing an id.
    """
    if count <= 0:
        return []
    if is_postgres(session):
        # one array value instead of `count` result rows: the driver parses it in C
        sequence = session.execute(text(f"SELECT pg_get_serial_sequence('{table}', 'id')")).scalar_one()
        ids = session.execute(
            text("SELECT array_agg(nextval(CAST(:seq AS regclass))) FROM generate_series(1, :n)"),
            {"seq": sequence, "n": count},
        ).scalar_one()
        return sorted(ids)
    start = int(session.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()) + 1
    return list(range(start, start + count))


def fetch_frame(session: Session, sql: str, params: dict[str, Any], schema: dict[str, Any]) -> pl.DataFrame:
    """Run a query and return its rows as a frame with the given column names and dtypes.

    Datetime columns come back timezone-aware UTC on both engines (SQLite holds them as text).
    """
    rows: Sequence[Any] = session.execute(text(sql), params).all()
    if is_postgres(session):
        return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    as_text = {
        name: (pl.Utf8 if isinstance(dtype, pl.Datetime) or dtype == pl.Date else dtype)
        for name, dtype in schema.items()
    }
    df = pl.DataFrame([tuple(r) for r in rows], schema=as_text, orient="row")
    exprs = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Datetime):
            exprs.append(
                pl.col(name)
                .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=True)
                .dt.replace_time_zone("UTC")
                .alias(name)
            )
        elif dtype == pl.Date:
            exprs.append(pl.col(name).str.to_date("%Y-%m-%d").alias(name))
    return df.with_columns(exprs) if exprs else df


# page cache of a SQLite connection while it loads a batch (KiB, as PRAGMA cache_size takes negative values)
SQLITE_LOAD_CACHE_KIB = 262_144


@contextmanager
def sqlite_load_cache(session: Session) -> Iterator[None]:
    """On SQLite, a large page cache for the duration of a bulk load, then the connection's own again.

    The default cache (2 MiB) is far smaller than the indexes a large load touches: random inserts into
    the (customer, time) indexes then evict and re-read pages all the time. The setting is per
    connection and changes nothing about durability.
    """
    if is_postgres(session):
        yield
        return
    previous = session.execute(text("PRAGMA cache_size")).scalar_one()
    session.execute(text(f"PRAGMA cache_size = -{SQLITE_LOAD_CACHE_KIB}"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size = {int(previous)}"))
