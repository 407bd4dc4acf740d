"""The Parquet export of one workspace: every table the analytical queries read, one Parquet dataset
(a folder of files) per table, and a manifest saying what was exported, from which schema, when."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Numeric, String, Table, Text, select, text
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON, TypeEngine

from siyu.core.db import Base
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ROWS_PER_FILE = 500_000

# The tables behind the selectables the metrics, the overview and segment filters read (orders'
# purchases, customers' facts and consent spans, WeCom friend spans, live-code scans and adds, lifecycle
# stage spans, reached customers, segment members, channel costs). A metric reading a table missing here
# fails on Spark with "table or view not found", which the tests under tests/analytics would show.
ANALYTIC_TABLES: tuple[str, ...] = (
    "workspace",
    "channel",
    "channel_cost",
    "store",
    "customer",
    "customer_rollup",
    "identity",
    "consent",
    "customer_order",
    "order_line",
    "customer_event",
    "wecom_follow",
    "live_code",
    "live_code_scan",
    "live_code_add",
    "reach_message",
    "stage_transition",
    "customer_stage",
    "customer_rfm",
    "segment_membership",
)


@dataclass(frozen=True)
class ExportedTable:
    name: str
    rows: int
    files: int
    columns: dict[str, str]  # column → Parquet logical type as polars names it


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` beside the datasets says."""

    format_version: int
    schema_version: str  # the store's migration revision
    workspace_id: int
    workspace_slug: str
    exported_at: str  # ISO 8601, UTC
    tables: dict[str, ExportedTable]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)

    @classmethod
    def from_json(cls, payload: str) -> Manifest:
        data = json.loads(payload)
        tables = {name: ExportedTable(**table) for name, table in data.pop("tables").items()}
        return cls(tables=tables, **data)


def _dtype(column_type: TypeEngine[Any]) -> Any:
    """The polars type a column is exported as: integers stay integers (money is in cents), times are
    UTC instants, JSON its text."""
    impl = getattr(column_type, "impl", column_type)
    if isinstance(impl, Boolean):
        return pl.Boolean
    if isinstance(impl, Integer):
        return pl.Int64
    if isinstance(impl, DateTime):
        return pl.Datetime("us", "UTC")
    if isinstance(impl, Date):
        return pl.Date
    if isinstance(impl, Float | Numeric):
        return pl.Float64
    if isinstance(impl, JSON | String | Text):
        return pl.Utf8
    raise ValidationFailed(f"no Parquet type for a column of type {column_type!r}", where="export")


def _value(value: Any, is_json: bool) -> Any:
    if is_json and value is not None and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _export_table(session: Session, table: Table, *, workspace_id: int, folder: Path) -> ExportedTable:
    key = table.c.id if table.name == "workspace" else table.c.workspace_id
    schema = {column.name: _dtype(column.type) for column in table.columns}
    json_columns = {
        column.name for column in table.columns if isinstance(getattr(column.type, "impl", column.type), JSON)
    }
    folder.mkdir(parents=True)
    rows, files = 0, 0
    order = list(table.primary_key.columns) or list(table.columns)
    result = session.execute(
        select(table).where(key == workspace_id).order_by(*order).execution_options(yield_per=ROWS_PER_FILE)
    )
    for chunk in result.partitions():
        frame = pl.DataFrame(
            [
                tuple(_value(v, name in json_columns) for name, v in zip(schema, row, strict=True))
                for row in chunk
            ],
            schema=schema,
            orient="row",
        )
        frame.write_parquet(folder / f"part-{files:05d}.parquet")
        rows, files = rows + frame.height, files + 1
    if files == 0:  # an empty dataset still says its columns
        pl.DataFrame(schema=schema).write_parquet(folder / "part-00000.parquet")
        files = 1
    return ExportedTable(
        name=table.name, rows=rows, files=files, columns={n: str(t) for n, t in schema.items()}
    )


def _schema_version(session: Session) -> str:
    return str(session.scalar(text("SELECT version_num FROM alembic_version")) or "")


def export_parquet(session: Session, *, workspace_id: int, workspace_slug: str, directory: Path) -> Manifest:
    """Write the workspace's analytic tables under `directory` (which must be empty or absent): a
    folder of Parquet files per table and `manifest.json`. Reads in one transaction, so every table is of
    the same moment on PostgreSQL."""
    if directory.exists() and any(directory.iterdir()):
        raise Conflict(f"{directory} is not empty", where="DIR", hint="export into a new or empty folder")
    import siyu.models  # noqa: F401  # every table in the metadata

    missing = [name for name in ANALYTIC_TABLES if name not in Base.metadata.tables]
    if missing:
        raise NotFound(f"tables {', '.join(missing)} are not in the schema")
    directory.mkdir(parents=True, exist_ok=True)
    exported_at: datetime = utcnow()
    tables = {
        name: _export_table(
            session, Base.metadata.tables[name], workspace_id=workspace_id, folder=directory / name
        )
        for name in ANALYTIC_TABLES
    }
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        schema_version=_schema_version(session),
        workspace_id=workspace_id,
        workspace_slug=workspace_slug,
        exported_at=exported_at.isoformat(),
        tables=tables,
    )
    (directory / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def read_manifest(directory: Path) -> Manifest:
    """The manifest of an export, or a clear error when `directory` holds none."""
    path = directory / MANIFEST
    if not path.is_file():
        raise NotFound(
            f"{path} does not exist", where="--parquet", hint="export first: siyu analytics export DIR"
        )
    manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
    if manifest.format_version != FORMAT_VERSION:
        raise ValidationFailed(
            f"the export's format version is {manifest.format_version}, this siyu reads {FORMAT_VERSION}",
            where=str(path),
            hint="export again with this version of siyu",
        )
    return manifest
