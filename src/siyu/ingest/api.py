"""JSON routes for imports: batch POST of records, import jobs with their rejects, and signed webhooks.

Every way in goes through the same loader (`siyu.ingest.service.import_records`), so a record sent by a
webhook is validated, deduplicated and resolved exactly like a row of an imported file.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.ingest import service as ingest
from siyu.ingest import webhooks
from siyu.ingest.schemas import ImportKind, LoadResult, Reject
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api", tags=["imports"])
MAX_RECORDS = 10_000


class BatchIn(BaseModel):
    records: list[dict[str, Any]] = Field(
        description="Records keyed by canonical field names (see siyu.ingest.schemas), e.g. external_id, "
        "phone, paid_cents, placed_at.",
        max_length=MAX_RECORDS,
    )
    strict: bool = Field(False, description="Write nothing if any record is bad.")


class ImportJobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    source: str
    filename: str
    status: str
    strict: bool
    total_rows: int
    processed_rows: int
    inserted_rows: int
    updated_rows: int
    unchanged_rows: int
    rejected_rows: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class RejectOut(BaseModel):
    row: int = Field(description="Index + 1 of the record in the batch, or the row of the file.")
    column: str
    value: str
    reason: str


class LoadResultOut(BaseModel):
    inserted: int
    updated: int
    unchanged: int
    customers_created: int
    customers_merged: int
    conflicts_flagged: int


class ImportOut(BaseModel):
    job: ImportJobOut
    result: LoadResultOut
    rejects: list[RejectOut]


class JobDetailOut(BaseModel):
    job: ImportJobOut
    rejects: list[RejectOut]


def _import_out(job: Any, result: LoadResult, rejects: list[Reject]) -> ImportOut:
    return ImportOut(
        job=ImportJobOut.model_validate(job),
        result=LoadResultOut(
            inserted=result.inserted,
            updated=result.updated,
            unchanged=result.unchanged,
            customers_created=result.customers_created,
            customers_merged=result.customers_merged,
            conflicts_flagged=result.conflicts_flagged,
        ),
        rejects=[RejectOut(**r.to_dict()) for r in rejects],
    )


@router.post("/imports/{kind}", response_model=ImportOut, status_code=201)
def import_batch(
    kind: ImportKind, body: BatchIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> ImportOut:
    """Load a batch of customers, orders or events; bad records come back as rejects with their reason."""
    job, result, rejects = ingest.import_records(
        session,
        workspace_id=actor.workspace_id,
        kind=kind,
        records=body.records,
        strict=body.strict,
        source="api",
        actor_user_id=actor.user_id,
    )
    return _import_out(job, result, rejects)


@router.get("/imports", response_model=list[ImportJobOut])
def list_jobs(session: DbSession, actor: Actor = require(Permission.READ)) -> list[ImportJobOut]:
    return [
        ImportJobOut.model_validate(j) for j in ingest.list_jobs(session, workspace_id=actor.workspace_id)
    ]


@router.get("/imports/{job_id}", response_model=JobDetailOut)
def get_job(job_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> JobDetailOut:
    job = ingest.get_job(session, workspace_id=actor.workspace_id, job_id=job_id)
    rejects = ingest.job_rejects(session, workspace_id=actor.workspace_id, job_id=job_id)
    return JobDetailOut(
        job=ImportJobOut.model_validate(job),
        rejects=[
            RejectOut(row=r.row_number, column=r.column, value=r.value, reason=r.reason) for r in rejects
        ],
    )


def _records_of(body: bytes) -> list[dict[str, Any]]:
    """A delivery's records: `{"records": [...]}`, a JSON list, or one JSON object."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ValidationFailed(f"body is not JSON: {exc}", where="body") from None
    if isinstance(document, dict) and isinstance(document.get("records"), list):
        records = document["records"]
    elif isinstance(document, list):
        records = document
    elif isinstance(document, dict):
        records = [document]
    else:
        raise ValidationFailed("body must be a JSON object or a list of objects", where="body")
    if not all(isinstance(r, dict) for r in records):
        raise ValidationFailed("every record must be a JSON object", where="records")
    if len(records) > MAX_RECORDS:
        raise ValidationFailed(f"more than {MAX_RECORDS} records in one delivery", where="records")
    return records


async def _raw_body(request: Request) -> bytes:
    """The exact bytes received: the signature covers them, not a re-serialised JSON."""
    return await request.body()


@router.post("/hooks/{workspace_slug}/{kind}", response_model=ImportOut, tags=["webhooks"])
def webhook(
    workspace_slug: str,
    kind: ImportKind,
    request: Request,
    session: DbSession,
    body: Annotated[bytes, Depends(_raw_body)],
    x_siyu_timestamp: Annotated[str | None, Header()] = None,
    x_siyu_signature: Annotated[str | None, Header()] = None,
) -> ImportOut:
    """Signed inbound delivery from a shop system (scheme and worked example: `siyu.ingest.webhooks`).

    401 when a signature header is missing, stale or wrong; the records are then loaded like a batch.
    """
    workspace_id = webhooks.verify_delivery(
        session,
        workspace_slug=workspace_slug,
        timestamp=x_siyu_timestamp,
        signature=x_siyu_signature,
        body=body,
        tolerance_seconds=request.app.state.settings.webhook_tolerance_seconds,
    )
    job, result, rejects = ingest.import_records(
        session, workspace_id=workspace_id, kind=kind, records=_records_of(body), source="webhook"
    )
    return _import_out(job, result, rejects)
