"""The segment pages (分群): every saved segment with its members, lag and drift; and one segment with
its members over time, its rule and SQL, and its current members a page at a time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.segments import service
from siyu.segments.models import Segment
from siyu.segments.schemas import SegmentStatus
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render

router = APIRouter(include_in_schema=False)
HISTORY_DAYS = 90
PAGE_SIZE = 50


def lag_text(seconds: float) -> str:
    """A lag as people read it: 0s, 45s, 12m, 3h, 2d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _drift(status: SegmentStatus) -> str | None:
    if status.reconciled_at is None:
        return None
    return f"{status.drift_missing or 0} / {status.drift_extra or 0}"


@router.get("/segments")
def segments_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    statuses = service.segment_statuses(session, actor=actor)
    processing = service.processing(session, actor=actor)
    return render(
        request,
        "segments/list.html",
        {"statuses": statuses, "lag_text": lag_text, "drift": _drift, "processing": processing},
        session=session,
        actor=actor,
    )


@router.get("/segments/new")
def new_segment_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    return _builder(request, session, actor, segment=None)


@router.get("/segments/{segment_id}/edit")
def edit_segment_page(request: Request, segment_id: int, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    segment = service.get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    return _builder(request, session, actor, segment=segment)


def _builder(request: Request, session: Session, actor: Actor, *, segment: Segment | None) -> Response:
    """The builder: the rule as a tree of groups and conditions, written as the canonical JSON the API
    stores; the catalogue of fields, tags and segments comes with the page."""
    return render(
        request,
        "segments/builder.html",
        {
            "segment": segment,
            "builder": {
                "catalog": service.rule_catalog(session, actor=actor),
                "segment_id": segment.id if segment else None,
                "name": segment.name if segment else "",
                "rule": segment.rule if segment else {"type": "and", "rules": []},
            },
        },
        session=session,
        actor=actor,
    )


@router.get("/segments/{segment_id}")
def segment_page(
    request: Request, segment_id: int, session: DbSession, actor: CurrentActor, cursor: str | None = None
) -> Response:
    actor.require(Permission.READ)
    status = service.segment_status(session, actor=actor, segment_id=segment_id)
    segment = service.get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    history = service.members_over_time(session, actor=actor, segment_id=segment_id, days=HISTORY_DAYS)
    members = service.segment_members(
        session, actor=actor, segment_id=segment_id, cursor=cursor, limit=PAGE_SIZE
    )
    explained = (
        service.explain(session, actor=actor, rule=segment.rule) if not status.evaluation_error else None
    )
    chart = {
        "days": [point.at.date().isoformat() for point in history],
        "members": [point.members for point in history],
    }
    return render(
        request,
        "segments/detail.html",
        {
            "status": status,
            "explained": explained,
            "members": members,
            "chart": chart,
            "history_days": HISTORY_DAYS,
            "lag_text": lag_text,
            "drift": _drift,
        },
        session=session,
        actor=actor,
    )
