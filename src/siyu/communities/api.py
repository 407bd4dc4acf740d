"""JSON routes of communities: sync the groups, the groups with their figures, the activity of a
period, one group's members, growth and members' orders, group tags, a group's join QR image, and
group live codes with their QR."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from siyu.auth.service import Actor, Permission
from siyu.communities import codes, service, stats
from siyu.communities.schemas import (
    Activity,
    GroupCodeIn,
    GroupCodeOut,
    GroupDetail,
    GroupSummary,
    Member,
    TagIn,
)
from siyu.core.errors import ValidationFailed
from siyu.livecodes import qr
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/communities", tags=["communities"])


class SyncOut(BaseModel):
    seen: int
    created: int
    updated: int


class ActiveIn(BaseModel):
    active: bool


@router.post("/sync", response_model=SyncOut)
def sync(session: DbSession, actor: Actor = require(Permission.WRITE)) -> SyncOut:
    """Fetch every customer group and its members from WeCom (joins and leaves since the last sync)."""
    result = service.sync(session, actor=actor)
    return SyncOut(seen=result.seen, created=result.created, updated=result.updated)


@router.get("/groups", response_model=list[GroupSummary])
def list_groups(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    start: date | None = None,
    end: date | None = None,
) -> list[GroupSummary]:
    """Every group with members, customers matched, joins, leaves and members' orders over [start, end]."""
    start, end = stats.period(session, workspace_id=actor.workspace_id, start=start, end=end)
    return stats.group_summaries(session, workspace_id=actor.workspace_id, start=start, end=end)


@router.get("/activity", response_model=Activity)
def activity(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    start: date | None = None,
    end: date | None = None,
) -> Activity:
    """Activity (群活跃度) over [start, end] from WeCom's daily group figures: messages, active groups and
    active members for the period, per day and per owner (docs/communities.md)."""
    start, end = stats.period(session, workspace_id=actor.workspace_id, start=start, end=end)
    return stats.activity(session, workspace_id=actor.workspace_id, start=start, end=end)


@router.get("/groups/{chat_id}", response_model=GroupDetail)
def get_group(
    chat_id: str,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    start: date | None = None,
    end: date | None = None,
) -> GroupDetail:
    """One group: its figures, growth by day and members' orders against non-members' (docs/communities.md)."""
    start, end = stats.period(session, workspace_id=actor.workspace_id, start=start, end=end)
    return stats.group_detail(session, workspace_id=actor.workspace_id, chat_id=chat_id, start=start, end=end)


@router.get("/groups/{chat_id}/members", response_model=list[Member])
def members(chat_id: str, session: DbSession, actor: Actor = require(Permission.READ)) -> list[Member]:
    return service.members_of(session, workspace_id=actor.workspace_id, chat_id=chat_id)


@router.post("/groups/{chat_id}/tags", response_model=list[str])
def add_tag(
    chat_id: str, body: TagIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> list[str]:
    service.add_tag(session, actor=actor, chat_id=chat_id, name=body.name)
    return service.tags_by_group(session, workspace_id=actor.workspace_id).get(chat_id, [])


@router.post("/groups/{chat_id}/tags/remove", response_model=list[str])
def remove_tag(
    chat_id: str, body: TagIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> list[str]:
    service.remove_tag(session, actor=actor, chat_id=chat_id, name=body.name)
    return service.tags_by_group(session, workspace_id=actor.workspace_id).get(chat_id, [])


@router.put("/groups/{chat_id}/qr", status_code=204)
def save_qr(
    chat_id: str,
    session: DbSession,
    image: Annotated[UploadFile, File(description="the group's join QR saved from WeCom, PNG or JPEG")],
    expires_at: Annotated[datetime | None, Form()] = None,
    actor: Actor = require(Permission.WRITE),
) -> Response:
    """Keep the group's join QR image; it expires at `expires_at` (default and at most: in 7 days)."""
    service.save_qr(
        session,
        actor=actor,
        chat_id=chat_id,
        image=image.file.read(service.MAX_QR_BYTES + 1),
        expires_at=expires_at,
    )
    return Response(status_code=204)


@router.get("/groups/{chat_id}/qr")
def group_qr(chat_id: str, session: DbSession, actor: Actor = require(Permission.READ)) -> Response:
    service.get_group(session, workspace_id=actor.workspace_id, chat_id=chat_id)
    found = service.qr_of(session, workspace_id=actor.workspace_id, chat_id=chat_id)
    if found is None:
        raise ValidationFailed("this group has no join QR yet", where="chat_id", hint="upload one (PUT …/qr)")
    return Response(
        found.image, media_type=found.content_type, headers={"Cache-Control": "private, max-age=60"}
    )


@router.get("/codes", response_model=list[GroupCodeOut])
def list_codes(session: DbSession, actor: Actor = require(Permission.READ)) -> list[GroupCodeOut]:
    return [
        codes.describe(session, code=c) for c in codes.list_codes(session, workspace_id=actor.workspace_id)
    ]


@router.post("/codes", response_model=GroupCodeOut, status_code=201)
def create_code(
    body: GroupCodeIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> GroupCodeOut:
    return codes.describe(session, code=codes.create_code(session, actor=actor, spec=body))


@router.get("/codes/{code_id}", response_model=GroupCodeOut)
def get_code(code_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> GroupCodeOut:
    return codes.describe(
        session, code=codes.get_code(session, workspace_id=actor.workspace_id, code_id=code_id)
    )


@router.post("/codes/{code_id}/active", response_model=GroupCodeOut)
def set_active(
    code_id: int, body: ActiveIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> GroupCodeOut:
    """Take the code out of use (its landing page answers 404) or back into use."""
    return codes.describe(
        session, code=codes.set_active(session, actor=actor, code_id=code_id, active=body.active)
    )


@router.get("/codes/{code_id}/qr.png")
def code_qr(
    request: Request,
    code_id: int,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    size: str = "8cm",
) -> Response:
    """The code's QR (its landing URL on this host) as PNG, `size` one of screen, 5cm, 8cm, 15cm."""
    code = codes.get_code(session, workspace_id=actor.workspace_id, code_id=code_id)
    body = qr.png(codes.landing_url(str(request.base_url), code), size=size)
    return Response(body, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})
