"""Import pages: upload a file, check and change the column mapping, start, watch progress, read rejects.

An import runs in a background thread of the web process; its progress lives in a small in-process
registry that the progress page polls as JSON. The finished job and its rejects are read from the store.
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from siyu.auth.service import Actor, Permission
from siyu.core.config import get_settings
from siyu.core.db import Database
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.ingest import mapping as mapping_rules
from siyu.ingest import service as ingest
from siyu.ingest.schemas import ImportKind
from siyu.web.deps import CurrentActor, DbSession, get_database
from siyu.web.templating import csv_download, render, render_error

router = APIRouter(include_in_schema=False)

ALLOWED_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".xlsx", ".jsonl", ".json", ".ndjson"})
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_UNSAFE_NAME = re.compile(r"[\\/\x00-\x1f:*?\"<>|]")
IGNORE = "ignore"


# --- uploads --------------------------------------------------------------------------------------


def _upload_root(workspace_id: int) -> Path:
    return get_settings().data_dir / "uploads" / str(workspace_id)


def _safe_filename(name: str) -> str:
    base = _UNSAFE_NAME.sub("_", Path(name or "upload").name).strip(". ") or "upload"
    return base[-150:]


def save_upload(upload: UploadFile, *, workspace_id: int) -> tuple[str, Path]:
    """Keep an uploaded file under the workspace's upload folder; returns its token and path."""
    name = _safe_filename(upload.filename or "")
    if Path(name).suffix.lower() not in ALLOWED_SUFFIXES:
        raise ValidationFailed(
            f"{name!r} is not a CSV, Excel (.xlsx) or JSONL file",
            where="file",
            hint="save the sheet as .csv or .xlsx, or export events as .jsonl",
        )
    token = secrets.token_urlsafe(18)
    folder = _upload_root(workspace_id) / token
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("wb") as handle:
        shutil.copyfileobj(upload.file, handle, length=1024 * 1024)
    size = path.stat().st_size
    if size == 0 or size > MAX_UPLOAD_BYTES:
        shutil.rmtree(folder, ignore_errors=True)
        raise ValidationFailed(
            "the file is empty" if size == 0 else "the file is larger than 512 MB",
            where="file",
            hint="choose the exported file again"
            if size == 0
            else "split it, or use `siyu import` on the server",
        )
    return token, path


def uploaded_path(token: str, *, workspace_id: int) -> Path:
    """The file an upload token stands for, within this workspace only."""
    folder = _upload_root(workspace_id) / token
    files = sorted(folder.iterdir()) if _TOKEN.match(token) and folder.is_dir() else []
    if not files:
        raise NotFound("the uploaded file is gone", where="upload", hint="upload the file again")
    return files[0]


# --- background runs ------------------------------------------------------------------------------


@dataclass
class ImportRun:
    """One import started from the page, as the progress page sees it."""

    workspace_id: int
    filename: str
    processed: int = 0
    total: int = 0
    status: str = "running"  # running | done | failed
    job_id: int | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "status": self.status,
                "processed": self.processed,
                "total": self.total,
                "job_id": self.job_id,
                "error": self.error,
                "result_url": f"/imports/{self.job_id}" if self.job_id is not None else None,
            }


_runs: dict[str, ImportRun] = {}
_runs_lock = threading.Lock()
MAX_KEPT_RUNS = 200


def _register(run: ImportRun) -> str:
    run_id = secrets.token_urlsafe(12)
    with _runs_lock:
        if len(_runs) >= MAX_KEPT_RUNS:  # forget the oldest finished runs; their jobs stay in the store
            for old in [k for k, r in _runs.items() if r.status != "running"][: MAX_KEPT_RUNS // 2]:
                del _runs[old]
        _runs[run_id] = run
    return run_id


def get_run(run_id: str, *, workspace_id: int) -> ImportRun:
    with _runs_lock:
        run = _runs.get(run_id)
    if run is None or run.workspace_id != workspace_id:
        raise NotFound("no such import in progress", where="run", hint="see the recent imports list")
    return run


def start_import(
    database: Database,
    *,
    actor: Actor,
    kind: ImportKind,
    path: Path,
    mapping_overrides: dict[str, str],
    strict: bool,
) -> str:
    """Run `ingest.import_file` in a background thread; returns the run id the progress page polls."""
    run = ImportRun(workspace_id=actor.workspace_id, filename=path.name)

    def progress(processed: int, total: int) -> None:
        with run.lock:
            run.processed, run.total = processed, total

    def work() -> None:
        try:
            job = ingest.import_file(
                database,
                workspace_id=actor.workspace_id,
                kind=kind,
                path=path,
                mapping_overrides=mapping_overrides,
                strict=strict,
                actor_user_id=actor.user_id,
                source="file",
                progress=progress,
            )
            with run.lock:
                run.job_id, run.status, run.error = job.id, job.status, job.error
                run.processed = run.total = job.total_rows
        except BaseException as exc:  # the job row is marked failed by the service; show why here
            with run.lock:
                run.status, run.error = "failed", str(exc)

    run_id = _register(run)
    threading.Thread(target=work, name=f"import-{run_id}", daemon=True).start()
    return run_id


# --- pages ----------------------------------------------------------------------------------------


def _kind(value: str) -> ImportKind:
    try:
        return ImportKind(value)
    except ValueError:
        raise ValidationFailed(
            f"{value!r} is not a kind of import", where="kind", hint="customers, orders or events"
        ) from None


def _field_choices(kind: ImportKind, mapping: dict[str, str]) -> list[str]:
    fields = mapping_rules.known_fields(kind)
    extra = [target for target in mapping.values() if target not in fields]  # attr:…, identity:… as detected
    return fields + sorted(set(extra))


def _index_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "ingest/index.html",
        {
            "jobs": ingest.list_jobs(session, workspace_id=actor.workspace_id, limit=20),
            "kinds": [k.value for k in ImportKind],
            "error": error,
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


def _preview_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    token: str,
    kind: ImportKind,
    preview: dict[str, Any],
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "ingest/preview.html",
        {
            "token": token,
            "kind": kind.value,
            "preview": preview,
            "choices": _field_choices(kind, preview["mapping"]),
            "error": error,
            "ignore": IGNORE,
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


@router.get("/imports")
def import_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    return _index_page(request, session, actor)


@router.post("/imports/preview")
def preview(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    kind: Annotated[str, Form()],
    file: UploadFile,
) -> Response:
    """Keep the upload and show the detected mapping for the user to check and change."""
    actor.require(Permission.WRITE)
    try:
        import_kind = _kind(kind)
        token, path = save_upload(file, workspace_id=actor.workspace_id)
        shown = ingest.preview_file(path, import_kind)
    except SiyuError as error:
        return _index_page(request, session, actor, error=error, status_code=error.status_code)
    return _preview_page(request, session, actor, token=token, kind=import_kind, preview=shown)


def mapping_from_form(form: Any) -> dict[str, str]:
    """The mapping the user chose: `column.N` names a file column and `target.N` its field (or ignore)."""
    chosen: dict[str, str] = {}
    for key in form:
        if key.startswith("column."):
            index = key.removeprefix("column.")
            column = str(form[key])
            chosen[column] = str(form.get(f"target.{index}", "")).strip() or IGNORE
    return chosen


@router.post("/imports/start")
async def start(request: Request, actor: CurrentActor) -> Response:
    """Start the import with the confirmed mapping; a mapping the importer refuses is shown again."""
    actor.require(Permission.WRITE)
    form = await request.form()
    token = str(form.get("upload", ""))
    database = get_database(request)
    overrides = mapping_from_form(form)
    with database.reader() as session:
        try:
            import_kind = _kind(str(form.get("kind", "")))
            path = uploaded_path(token, workspace_id=actor.workspace_id)
        except SiyuError as error:
            return _index_page(request, session, actor, error=error, status_code=error.status_code)
        try:
            # refuses an unknown column or field before anything starts
            await run_in_threadpool(ingest.preview_file, path, import_kind, overrides)
        except SiyuError as error:
            shown = await run_in_threadpool(ingest.preview_file, path, import_kind)
            return _preview_page(
                request,
                session,
                actor,
                token=token,
                kind=import_kind,
                preview=shown,
                error=error,
                status_code=error.status_code,
            )
    run_id = start_import(
        database,
        actor=actor,
        kind=import_kind,
        path=path,
        mapping_overrides=overrides,
        strict=form.get("strict") == "on",
    )
    return RedirectResponse(f"/imports/runs/{run_id}", status_code=303)


@router.get("/imports/runs/{run_id}")
def run_page(request: Request, run_id: str, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    try:
        run = get_run(run_id, workspace_id=actor.workspace_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "ingest/progress.html",
        {"run_id": run_id, "run": run.as_dict(), "filename": run.filename},
        session=session,
        actor=actor,
    )


@router.get("/imports/runs/{run_id}/progress")
def run_progress(run_id: str, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    try:
        run = get_run(run_id, workspace_id=actor.workspace_id)
    except NotFound as error:
        return JSONResponse(error.to_dict(), status_code=404)
    return JSONResponse(run.as_dict())


@router.get("/imports/{job_id}")
def job_page(request: Request, job_id: int, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    try:
        job = ingest.get_job(session, workspace_id=actor.workspace_id, job_id=job_id)
        rejects = ingest.job_rejects(session, workspace_id=actor.workspace_id, job_id=job_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return render(request, "ingest/job.html", {"job": job, "rejects": rejects}, session=session, actor=actor)


@router.get("/imports/{job_id}/rejects.csv")
def rejects_csv(job_id: int, session: DbSession, actor: CurrentActor) -> Response:
    """The reject report as CSV (UTF-8 with BOM so that Excel shows the Chinese reasons correctly)."""
    actor.require(Permission.WRITE)
    rejects = ingest.job_rejects(session, workspace_id=actor.workspace_id, job_id=job_id, limit=1_000_000)
    return csv_download(
        f"import-{job_id}-rejects.csv",
        ingest.REJECT_COLUMNS,
        ((r.row_number, r.column, r.value, r.reason) for r in rejects),
    )
