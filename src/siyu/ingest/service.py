"""Import jobs: read, map and validate a file or a list of records, load it in one transaction, report rejects.

The job row is written in small transactions of its own (running → done / failed); the data lands in
one transaction, so a failure or a crash leaves the pool as it was before the import.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.core.config import get_settings
from siyu.core.db import Database
from siyu.core.errors import NotFound
from siyu.core.timeutil import utcnow
from siyu.ingest import mapping as mapping_rules
from siyu.ingest import reading, validation
from siyu.ingest.loader import Progress, load_batch
from siyu.ingest.models import ImportJob, ImportReject
from siyu.ingest.schemas import ImportKind, LoadResult, Reject, ValidatedBatch
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
) -> ImportJob:
    """Import a CSV / .xlsx / JSONL file; returns the finished job (status done or failed).

    Good rows land in one transaction; rejected rows go to `ImportReject` rows and to a CSV reject file
    (`reject_file`, default `default_reject_path(job.id)`). With `strict`, any reject means nothing is
    written and the job fails. Any exception while loading rolls the data back, marks the job failed and
    is raised again. `progress(processed_rows, total_rows)` is called as chunks load.
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
        table = reading.read_table(path)
        detected = mapping_rules.detect(table.columns, kind)
        mapping = mapping_rules.apply_overrides(
            detected, mapping_overrides or {}, columns=table.columns, kind=kind
        )
        with db.reader() as session:
            context = _validation_context(session, workspace_id=workspace_id)
        batch = validation.validate(table, kind, mapping, **context)
        with db.transaction() as session:
            row = session.get(ImportJob, job_id)
            assert row is not None
            row.total_rows, row.encoding, row.mapping = batch.total_rows, batch.encoding, batch.mapping
        return _load(
            db,
            job_id=job_id,
            workspace_id=workspace_id,
            batch=batch,
            strict=strict,
            source=source,
            actor_user_id=actor_user_id,
            reject_file=reject_file,
            progress=progress,
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


def _load(
    db: Database,
    *,
    job_id: int,
    workspace_id: int,
    batch: ValidatedBatch,
    strict: bool,
    source: str,
    actor_user_id: int | None,
    reject_file: Path | None,
    progress: Progress | None,
) -> ImportJob:
    rejects = list(batch.rejects)
    result = LoadResult()
    if not (strict and rejects):
        try:
            with db.transaction() as session:
                result, refused = load_batch(
                    session,
                    workspace_id=workspace_id,
                    batch=batch,
                    source=source,
                    actor_user_id=actor_user_id,
                    progress=_job_progress(db, job_id, progress),
                )
                rejects += refused
                if strict and refused:
                    # refusals found while loading (unknown owner, …): strict means none of it may land
                    raise _StrictRefusal
        except _StrictRefusal:
            result = LoadResult()
    rejects.sort(key=lambda r: (r.row_number, r.column))
    if rejects:
        write_reject_file(reject_file or default_reject_path(job_id), rejects)
    with db.transaction() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        _save_rejects(session, workspace_id=workspace_id, job_id=job_id, rejects=rejects)
        if strict and rejects:
            job.status = "failed"
            job.rejected_rows = len({r.row_number for r in rejects})
            job.error = f"strict import: {job.rejected_rows} rows rejected, nothing was written"
            job.finished_at = utcnow()
        else:
            _finish(job, result, rejects, batch.total_rows)
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
    table = reading.read_table(Path(path))
    detected = mapping_rules.detect(table.columns, kind)
    chosen = mapping_rules.apply_overrides(
        detected, mapping_overrides or {}, columns=table.columns, kind=kind
    )
    return {
        "encoding": table.encoding,
        "format": table.format,
        "columns": table.columns,
        "total_rows": table.height,
        "detected": detected,
        "mapping": chosen,
        "unmapped": [c for c in table.columns if c not in chosen],
        "rows": table.rows.head(PREVIEW_ROWS).to_dicts(),
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
