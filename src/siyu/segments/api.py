"""JSON routes for segments: evaluate a rule (count, sample, explain; `read`) and save, change and delete
segments (`write`), and their live membership: status (size, lag, drift), members, members over time,
rule tags, and the processing, sweep and reconciliation verbs a scheduler calls. Rules are given as
`?text=` or as canonical JSON in `?rule=`; evaluating stays a read (GET), so on SQLite it never takes
the write lock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.customers.schemas import CustomerSummary
from siyu.segments import export, service
from siyu.segments.schemas import (
    CountPoint,
    MembersPage,
    ReconcileIn,
    RuleCount,
    RuleExplain,
    RuleSample,
    RuleTagIn,
    RunResult,
    SegmentDrift,
    SegmentIn,
    SegmentOut,
    SegmentStatus,
    SegmentUpdate,
    TagMembersIn,
)
from siyu.tags.schemas import BulkTagResult
from siyu.web.deps import DbSession, get_database, require

router = APIRouter(prefix="/api", tags=["segments"])

TextQuery = Annotated[str | None, Query(description='The rule\'s text form, e.g. tag("VIP")')]
RuleQuery = Annotated[str | None, Query(description="The rule as canonical JSON (URL-encoded).")]
NowQuery = Annotated[datetime | None, Query(description="Evaluate as of this instant (default: now).")]


def _rule(text: str | None, rule: str | None) -> str | dict[str, Any]:
    if (text is None) == (rule is None):
        raise ValidationFailed("give the rule as ?text= or as ?rule= (JSON), one of the two", where="query")
    if text is not None:
        return text
    try:
        document = json.loads(rule or "")
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"?rule= is not JSON: {exc.msg}", where=f"rule, column {exc.colno}") from None
    if not isinstance(document, dict):
        raise ValidationFailed("?rule= must be a JSON object", where="rule")
    return document


@router.get("/segments/count", response_model=RuleCount)
def count_rule(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    text: TextQuery = None,
    rule: RuleQuery = None,
    now: NowQuery = None,
) -> RuleCount:
    """How many customers a rule matches (what the builder shows while editing)."""
    return service.count_segment_rule(session, actor=actor, rule=_rule(text, rule), now=now)


@router.get("/segments/sample", response_model=RuleSample)
def sample_rule(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    text: TextQuery = None,
    rule: RuleQuery = None,
    now: NowQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> RuleSample:
    """The count and the newest matching customers."""
    return service.sample_members(session, actor=actor, rule=_rule(text, rule), now=now, limit=limit)


@router.get("/segments/explain", response_model=RuleExplain)
def explain_rule(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    text: TextQuery = None,
    rule: RuleQuery = None,
    now: NowQuery = None,
) -> RuleExplain:
    """The rule in both forms and the SQL it runs as on this database."""
    return service.explain(session, actor=actor, rule=_rule(text, rule), now=now)


@router.get("/segments/catalog", response_model=dict[str, Any])
def rule_catalog(session: DbSession, actor: Actor = require(Permission.READ)) -> dict[str, Any]:
    """What a rule may test (fields, operators, choices) and the workspace's tags and segments: what the
    segment builder offers."""
    return service.rule_catalog(session, actor=actor)


@router.get("/segments/status", response_model=list[SegmentStatus])
def segment_statuses(session: DbSession, actor: Actor = require(Permission.READ)) -> list[SegmentStatus]:
    """Every segment's live membership: members, lag, last full evaluation, drift found, state."""
    return service.segment_statuses(session, actor=actor)


@router.post("/segments/process", response_model=RunResult)
def process_pending(
    session: DbSession,
    actor: Actor = require(Permission.WRITE),
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> RunResult:
    """Bring membership current with the next `limit` domain events (what the scheduler calls)."""
    return service.process_pending(session, workspace_id=actor.workspace_id, limit=limit)


@router.post("/segments/sweep", response_model=RunResult)
def sweep(session: DbSession, actor: Actor = require(Permission.WRITE)) -> RunResult:
    """Evaluate in full the segments whose rules change with time alone."""
    return service.sweep(session, workspace_id=actor.workspace_id)


@router.post("/segments/reconcile", response_model=list[SegmentDrift])
def reconcile(
    session: DbSession, body: ReconcileIn | None = None, actor: Actor = require(Permission.WRITE)
) -> list[SegmentDrift]:
    """Compare kept membership with a full evaluation per segment; `repair` fixes what differs."""
    return service.reconcile(
        session,
        workspace_id=actor.workspace_id,
        repair=bool(body and body.repair),
        actor_user_id=actor.user_id,
    )


@router.get("/segments", response_model=list[SegmentOut])
def list_segments(session: DbSession, actor: Actor = require(Permission.READ)) -> list[SegmentOut]:
    return [
        SegmentOut.model_validate(s) for s in service.list_segments(session, workspace_id=actor.workspace_id)
    ]


@router.post("/segments", response_model=SegmentOut, status_code=201)
def create_segment(
    body: SegmentIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> SegmentOut:
    segment = service.create_segment(
        session, actor=actor, name=body.name, rule=body.source, accept_warnings=body.accept_warnings
    )
    return SegmentOut.model_validate(segment)


@router.get("/segments/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> SegmentOut:
    return SegmentOut.model_validate(
        service.get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    )


@router.patch("/segments/{segment_id}", response_model=SegmentOut)
def update_segment(
    segment_id: int, body: SegmentUpdate, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> SegmentOut:
    if body.text is not None and body.rule is not None:
        raise ValidationFailed("give the rule either as text or as rule (JSON), not both", where="body")
    segment = service.update_segment(
        session,
        actor=actor,
        segment_id=segment_id,
        name=body.name,
        rule=body.text if body.text is not None else body.rule,
        accept_warnings=body.accept_warnings,
    )
    return SegmentOut.model_validate(segment)


@router.delete("/segments/{segment_id}", status_code=204)
def delete_segment(segment_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> Response:
    service.delete_segment(session, actor=actor, segment_id=segment_id)
    return Response(status_code=204)


@router.get("/segments/{segment_id}/count", response_model=RuleCount)
def count_segment(
    segment_id: int, session: DbSession, actor: Actor = require(Permission.READ), now: NowQuery = None
) -> RuleCount:
    """How many customers a saved segment matches now (a full evaluation)."""
    segment = service.get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    return service.count_segment_rule(session, actor=actor, rule=segment.rule, now=now)


@router.post("/segments/{segment_id}/tag", response_model=BulkTagResult)
def tag_segment_members(
    segment_id: int, body: TagMembersIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> BulkTagResult:
    """Tag everyone the segment matches now (once: the tag does not follow later changes)."""
    segment = service.get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    return service.tag_members(
        session, actor=actor, rule=segment.rule, tag_id=body.tag_id, source_ref=f"segment:{segment.id}"
    )


@router.post("/segments/{segment_id}/untag", response_model=BulkTagResult)
def untag_segment_members(
    segment_id: int, body: TagMembersIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> BulkTagResult:
    """Take a tag off everyone the segment matches now."""
    segment = service.get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    return service.untag_members(session, actor=actor, rule=segment.rule, tag_id=body.tag_id)


@router.get("/segments/{segment_id}/status", response_model=SegmentStatus)
def segment_status(
    segment_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> SegmentStatus:
    return service.segment_status(session, actor=actor, segment_id=segment_id)


@router.get("/segments/{segment_id}/history", response_model=list[CountPoint])
def members_over_time(
    segment_id: int,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    days: Annotated[int, Query(ge=1, le=730)] = 90,
) -> list[CountPoint]:
    """Members at the end of each of the last `days` days, the last point being now."""
    return service.members_over_time(session, actor=actor, segment_id=segment_id, days=days)


@router.get("/segments/{segment_id}/members", response_model=MembersPage)
def segment_members(
    segment_id: int,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MembersPage:
    """The current members, newest customer first; pass `next_cursor` for the next page."""
    return service.segment_members(session, actor=actor, segment_id=segment_id, cursor=cursor, limit=limit)


@router.put("/segments/{segment_id}/rule-tag", response_model=SegmentOut)
def set_rule_tag(
    segment_id: int, body: RuleTagIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> SegmentOut:
    """Members carry this tag (source rule) while they are members; null stops it (tags by hand stay)."""
    return SegmentOut.model_validate(
        service.set_rule_tag(session, actor=actor, segment_id=segment_id, tag_id=body.tag_id)
    )


@router.post(
    "/segments/{segment_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, export.MEDIA_TYPES["xlsx"]: {}}}},
)
def export_members(
    segment_id: int,
    request: Request,
    session: DbSession,
    actor: Actor = require(Permission.EXPORT),
    format: Annotated[str, Query(description="csv or xlsx")] = "csv",
) -> StreamingResponse:
    """Download the segment's current members (audited; phones masked for staff), streamed batch by
    batch: the audit row is committed with this request, the rows are read after it."""
    status = service.record_export(session, actor=actor, segment_id=segment_id, file_format=format)
    database = get_database(request)

    def batches() -> Iterator[list[CustomerSummary]]:
        with database.reader() as reading:
            yield from service.member_batches(reading, actor=actor, segment_id=segment_id)

    filename = f"segment-{segment_id}.{format}"
    return StreamingResponse(
        export.chunks(format, batches(), title=status.name),
        media_type=export.MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''"
            + quote(f"{status.name}.{format}"),
            "X-Rows": str(status.members),
        },
    )
