"""Import jobs: read, map and validate a file or a list of records, load it in one transaction, report rejects.

The job row is written in small transactions of its own (running → done / failed); the data lands in
one transaction, so a failure or a crash leaves the pool as it was before the import. A CSV file is read,
validated and loaded chunk by chunk inside that transaction: memory follows the chunk, not the file.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.core.config import get_settings
from siyu.core.db import Database
from siyu.core.errors import NotFound
from siyu.core.timeutil import utcnow
from siyu.ingest import chunking, reading, validation
from siyu.ingest import mapping as mapping_rules
from siyu.ingest.loader import DEFAULT_CHUNK_ROWS, Progress, load_batch, streaming_load
from siyu.ingest.models import ImportJob, ImportReject
from siyu.ingest.schemas import ImportKind, LoadResult, Reject
from siyu.segments import service as segments
from siyu.workspaces import service as workspaces

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 20
REJECT_COLUMNS = ("row", "column", "value", "reason")


class _StrictRefusal(Exception):
    """Raised inside the load transaction to roll it back when a strict import finds a bad row late."""


def default_reject_path(job_id: int) -> Path:
    """Where the reject report of a job is written unless the caller names a file."""
    return get_settings().data_dir / "rejects" / f"import-{job_id}-rejects.csv"


def write_reject_file(path: Path, rejects: list[Reject]) -> Path:
    """The rejects as CSV (UTF-8 with BOM, so that Excel opens Chinese text correctly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REJECT_COLUMNS)
        for r in rejects:
            writer.writerow((r.row_number, r.column, r.value, r.reason))
    return path


def _validation_context(session: Session, *, workspace_id: int) -> dict[str, Any]:
    workspace = workspaces.get_workspace(session, workspace_id=workspace_id)
    return {
        "known_channels": channels.channel_aliases(session, workspace_id=workspace_id),
        "known_stores": set(channels.store_codes(session, workspace_id=workspace_id)),
        "identity_denylist": [*(workspace.identity_denylist or []), *get_settings().identity_denylist],
        "workspace_timezone": workspace.timezone,
        "now": utcnow(),
    }


def _save_rejects(session: Session, *, workspace_id: int, job_id: int, rejects: list[Reject]) -> None:
    if rejects:
        session.execute(
            insert(ImportReject),
            [
                {
                    "workspace_id": workspace_id,
                    "job_id": job_id,
                    "row_number": r.row_number,
                    "column": r.column[:100],
                    "value": r.value[:500],
                    "reason": r.reason[:500],
                }
                for r in rejects
            ],
        )


def _finish(job: ImportJob, result: LoadResult, rejects: list[Reject], processed: int) -> None:
    job.status = "done"
    job.processed_rows = processed
    job.inserted_rows = result.inserted
    job.updated_rows = result.updated
    job.unchanged_rows = result.unchanged
    job.rejected_rows = len({r.row_number for r in rejects})
    job.finished_at = utcnow()


def import_file(
    db: Database,
    *,
    workspace_id: int,
    kind: ImportKind | str,
    path: Path,
    mapping_overrides: dict[str, str] | None = None,
    strict: bool = False,
    actor_user_id: int | None = None,
    source: str = "file",
    reject_file: Path | None = None,
    progress: Progress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ImportJob:
    """Import a CSV / .xlsx / JSONL file; returns the finished job (status done or failed).

    Good rows land in one transaction; rejected rows go to `ImportReject` rows and to a CSV reject file
    (`reject_file`, default `default_reject_path(job.id)`). With `strict`, any reject means nothing is
    written and the job fails. Any exception while loading rolls the data back, marks the job failed and
    is raised again. `progress(processed_rows, total_rows)` is called as chunks load.

    A CSV file is read, validated and loaded `chunk_rows` rows at a time (the rows of one order stay
    together, wherever they are in the file); Excel and JSON-lines files are read whole. The result does
    not depend on `chunk_rows`: row numbers are the file's, and the rollups are refreshed once at the end.
    """
    kind = ImportKind(kind)
    path = Path(path)
    with db.transaction() as session:
        job = ImportJob(
            workspace_id=workspace_id,
            kind=kind.value,
            source=source[:16],
            filename=path.name[:300],
            status="running",
            strict=strict,
            mapping={},
            created_by_user_id=actor_user_id,
            created_at=utcnow(),
        )
        session.add(job)
        session.flush()
        job_id = job.id
    try:
        stream = reading.open_table(path)
        detected = mapping_rules.detect(stream.columns, kind)
        mapping = mapping_rules.apply_overrides(
            detected, mapping_overrides or {}, columns=stream.columns, kind=kind
        )
        validation.check_mapping(stream.columns, kind, mapping)
        with db.reader() as session:
            context = _validation_context(session, workspace_id=workspace_id)
        with db.transaction() as session:
            row = session.get(ImportJob, job_id)
            assert row is not None
            row.encoding, row.mapping = stream.encoding, dict(mapping)
        return _load(
            db,
            job_id=job_id,
            workspace_id=workspace_id,
            kind=kind,
            stream=stream,
            mapping=mapping,
            context=context,
            strict=strict,
            source=source,
            actor_user_id=actor_user_id,
            reject_file=reject_file,
            progress=progress,
            chunk_rows=chunk_rows,
        )
    except BaseException as exc:
        _fail(db, job_id, f"{type(exc).__name__}: {exc}")
        raise


def _fail(db: Database, job_id: int, error: str) -> None:
    with db.transaction() as session:
        row = session.get(ImportJob, job_id)
        if row is not None and row.status == "running":
            row.status = "failed"
            row.error = error[:4000]
            row.finished_at = utcnow()


def _raw_chunks(
    stream: reading.TableStream, kind: ImportKind, mapping: dict[str, str], chunk_rows: int
) -> tuple[Iterator[pl.DataFrame], int]:
    """The file's rows in chunks, an order's rows in one chunk, and the number of rows (for progress).

    Only CSV is read in chunks; a first pass over its order-number column (or its first column, to
    count) finds the orders whose rows fall in several chunks."""
    if stream.format != "csv":
        return stream.chunks(reading.WHOLE_FILE_ROWS), 0
    order_column = next((c for c, f in mapping.items() if f == "external_id"), None)
    if kind != ImportKind.ORDERS:
        order_column = None
    plan = chunking.plan(stream, order_column=order_column, chunk_rows=chunk_rows)
    chunks = stream.chunks(chunk_rows)
    if order_column is not None:
        chunks = chunking.order_chunks(
            chunks, order_column=order_column, spanning=plan.spanning, chunk_rows=chunk_rows
        )
    return chunks, plan.rows


def _load(
    db: Database,
    *,
    job_id: int,
    workspace_id: int,
    kind: ImportKind,
    stream: reading.TableStream,
    mapping: dict[str, str],
    context: dict[str, Any],
    strict: bool,
    source: str,
    actor_user_id: int | None,
    reject_file: Path | None,
    progress: Progress | None,
    chunk_rows: int,
) -> ImportJob:
    rejects: list[Reject] = []
    result = LoadResult()
    total = good = last_row = 0
    chunks, estimate = _raw_chunks(stream, kind, mapping, chunk_rows)
    try:
        with (
            db.transaction() as session,
            streaming_load(
                session,
                workspace_id=workspace_id,
                kind=kind,
                source=source,
                actor_user_id=actor_user_id,
                progress=_job_progress(db, job_id, progress),
                total_rows=estimate,
            ) as loader,
        ):
            for rows in chunks:
                table = reading.RawTable(stream.columns, rows, stream.encoding, stream.format)
                batch = validation.validate(table, kind, mapping, **context)
                total += batch.total_rows
                rejects += batch.rejects
                # progress counts rows to load: those loaded or ready, and an estimate of the rest
                good += batch.rows.height
                last_row = max(last_row, rows.select(pl.col(reading.ROW_NUMBER).max()).item())
                loader.total_rows = good + max(estimate - (last_row - 1), 0)
                if strict and rejects:
                    # nothing will be written: read on only to report every reject
                    continue
                rejects += loader.add(batch)
            if strict and rejects:
                # refusals found while loading (unknown owner, …): strict means none of it may land
                raise _StrictRefusal
            result = loader.finish()
    except _StrictRefusal:
        result = LoadResult()
    rejects.sort(key=lambda r: (r.row_number, r.column))
    if rejects:
        write_reject_file(reject_file or default_reject_path(job_id), rejects)
    with db.transaction() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.total_rows = total
        _save_rejects(session, workspace_id=workspace_id, job_id=job_id, rejects=rejects)
        if strict and rejects:
            job.status = "failed"
            job.rejected_rows = len({r.row_number for r in rejects})
            job.error = f"strict import: {job.rejected_rows} rows rejected, nothing was written"
            job.finished_at = utcnow()
        else:
            _finish(job, result, rejects, total)
        session.flush()
    _bring_segments_current(db, workspace_id=workspace_id)
    return job


def _bring_segments_current(db: Database, *, workspace_id: int) -> None:
    """After a load, segment membership catches up with its events (a large load in one full evaluation
    of the affected segments). Its own transactions: a failure here leaves the events pending for the
    next run of the processor, and never undoes the import."""
    try:
        while True:
            with db.transaction() as session:
                run = segments.process_pending(session, workspace_id=workspace_id)
            if not run.remaining:
                return
    except Exception:
        logger.exception("segment membership did not catch up after an import of workspace %s", workspace_id)


def _job_progress(db: Database, job_id: int, progress: Progress | None) -> Progress:
    """Progress goes to the caller's callback and, on PostgreSQL, to the job row (SQLite allows one
    writer at a time, and the import's own transaction holds it)."""

    def report(processed: int, total: int) -> None:
        if db.is_postgres:
            with db.transaction() as session:
                row = session.get(ImportJob, job_id)
                if row is not None:
                    row.processed_rows = processed
        if progress is not None:
            progress(processed, total)

    return report


def import_records(
    session: Session,
    *,
    workspace_id: int,
    kind: ImportKind | str,
    records: list[dict[str, Any]],
    strict: bool = False,
    source: str = "api",
    actor_user_id: int | None = None,
) -> tuple[ImportJob, LoadResult, list[Reject]]:
    """Validate and load JSON records inside the caller's transaction (batch API, webhook).

    With `strict` and any reject nothing is loaded (the job is recorded as failed). Rejects are stored
    with the job and returned for the response.
    """
    kind = ImportKind(kind)
    batch = validation.validate_records(
        records, kind, **_validation_context(session, workspace_id=workspace_id)
    )
    job = ImportJob(
        workspace_id=workspace_id,
        kind=kind.value,
        source=source[:16],
        filename="",
        status="running",
        strict=strict,
        mapping={},
        total_rows=batch.total_rows,
        created_by_user_id=actor_user_id,
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    rejects = list(batch.rejects)
    result = LoadResult()
    if not (strict and rejects):
        savepoint = session.begin_nested()
        result, refused = load_batch(
            session, workspace_id=workspace_id, batch=batch, source=source, actor_user_id=actor_user_id
        )
        rejects += refused
        if strict and refused:
            savepoint.rollback()
            result = LoadResult()
        else:
            savepoint.commit()
    rejects.sort(key=lambda r: (r.row_number, r.column))
    _save_rejects(session, workspace_id=workspace_id, job_id=job.id, rejects=rejects)
    if strict and rejects:
        job.status = "failed"
        job.rejected_rows = len({r.row_number for r in rejects})
        job.error = f"strict import: {job.rejected_rows} rows rejected, nothing was written"
        job.finished_at = utcnow()
    else:
        _finish(job, result, rejects, batch.total_rows)
    session.flush()
    return job, result, rejects


def preview_file(
    path: Path, kind: ImportKind | str, mapping_overrides: dict[str, str] | None = None
) -> dict[str, Any]:
    """What the import page shows before importing: encoding, mapping, first rows, unmapped columns."""
    kind = ImportKind(kind)
    table = reading.open_table(Path(path))
    detected = mapping_rules.detect(table.columns, kind)
    chosen = mapping_rules.apply_overrides(
        detected, mapping_overrides or {}, columns=table.columns, kind=kind
    )
    first: list[dict[str, Any]] = []
    total = 0
    # the whole file is read to count its rows, a chunk at a time
    for chunk in table.chunks(DEFAULT_CHUNK_ROWS):
        if not first:
            first = chunk.head(PREVIEW_ROWS).to_dicts()
        total += chunk.height
    return {
        "encoding": table.encoding,
        "format": table.format,
        "columns": table.columns,
        "total_rows": total,
        "detected": detected,
        "mapping": chosen,
        "unmapped": [c for c in table.columns if c not in chosen],
        "rows": first,
    }


def get_job(session: Session, *, workspace_id: int, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None or job.workspace_id != workspace_id:
        raise NotFound(f"import {job_id} does not exist in this workspace", where="job_id")
    return job


def list_jobs(session: Session, *, workspace_id: int, limit: int = 50) -> list[ImportJob]:
    """The workspace's imports, newest first."""
    return list(
        session.scalars(
            select(ImportJob)
            .where(ImportJob.workspace_id == workspace_id)
            .order_by(ImportJob.id.desc())
            .limit(limit)
        )
    )


def job_rejects(session: Session, *, workspace_id: int, job_id: int, limit: int = 1000) -> list[ImportReject]:
    """Rejected rows of a job, in row order."""
    get_job(session, workspace_id=workspace_id, job_id=job_id)
    return list(
        session.scalars(
            select(ImportReject)
            .where(ImportReject.workspace_id == workspace_id, ImportReject.job_id == job_id)
            .order_by(ImportReject.row_number, ImportReject.id)
            .limit(limit)
        )
    )
