"""JSON routes of live codes: define codes and their staff, take staff online/offline, the figures,
the attributed adds, and the QR images (PNG/SVG in print sizes, PNG with a centre logo)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.livecodes import attribution, qr, service, stats, sync
from siyu.livecodes.models import LiveCode
from siyu.livecodes.schemas import (
    ActiveIn,
    AddOut,
    LiveCodeIn,
    LiveCodeOut,
    LiveCodeStats,
    OnlineIn,
    StaffOut,
)
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/live-codes", tags=["live codes"])
LOGO_MAX_BYTES = qr.MAX_LOGO_BYTES


def live_code_out(session: Session, code: LiveCode) -> LiveCodeOut:
    names = {m.user_id: m.display_name for m in auth.list_members(session, workspace_id=code.workspace_id)}
    return LiveCodeOut(
        id=code.id,
        name=code.name,
        placement=code.placement,
        channel_id=code.channel_id,
        store_id=code.store_id,
        strategy=code.strategy,
        state=code.state,
        landing_path=service.landing_path(code),
        is_active=code.is_active,
        auto_tag_ids=list(code.auto_tag_ids),
        welcome_text=code.welcome_text,
        cost_cents=code.cost_cents,
        wecom_remark=code.wecom_remark,
        wecom_skip_verify=code.wecom_skip_verify,
        staff=[
            StaffOut(
                user_id=s.user_id,
                display_name=names.get(s.user_id, ""),
                weight=s.weight,
                daily_cap=s.daily_cap,
                is_backup=s.is_backup,
                is_online=s.is_online,
                weekdays=s.weekdays,
                hours=service.hours_text(s),
                contact_qr_url=s.contact_qr_url,
                wecom_status=sync.status_of(s).value,
                wecom_error=s.wecom_error,
                wecom_qr_url=s.wecom_qr_url,
            )
            for s in service.staff_of(session, live_code_id=code.id)
        ],
        created_at=code.created_at,
    )


def landing_url(request: Request, code: LiveCode) -> str:
    """The absolute landing URL the QR carries, on the host this request came to."""
    return service.landing_url(str(request.base_url), code)


@router.get("", response_model=list[LiveCodeOut])
def list_codes(session: DbSession, actor: Actor = require(Permission.READ)) -> list[LiveCodeOut]:
    return [
        live_code_out(session, c) for c in service.list_live_codes(session, workspace_id=actor.workspace_id)
    ]


@router.post("", response_model=LiveCodeOut, status_code=201)
def create(body: LiveCodeIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> LiveCodeOut:
    return live_code_out(session, service.create_live_code(session, actor=actor, spec=body))


@router.get("/{live_code_id}", response_model=LiveCodeOut)
def get(live_code_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> LiveCodeOut:
    return live_code_out(
        session, service.get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id)
    )


@router.put("/{live_code_id}", response_model=LiveCodeOut)
def update(
    live_code_id: int, body: LiveCodeIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> LiveCodeOut:
    """Replace the code's settings and staff (its token and state stay)."""
    code = service.update_live_code(session, actor=actor, live_code_id=live_code_id, spec=body)
    return live_code_out(session, code)


@router.post("/{live_code_id}/active", response_model=LiveCodeOut)
def set_active(
    live_code_id: int, body: ActiveIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> LiveCodeOut:
    """Take the code out of use (its landing page answers 404) or back into use."""
    code = service.set_active(session, actor=actor, live_code_id=live_code_id, active=body.active)
    return live_code_out(session, code)


@router.put("/{live_code_id}/staff/{user_id}/online", response_model=LiveCodeOut)
def set_online(
    live_code_id: int,
    user_id: int,
    body: OnlineIn,
    session: DbSession,
    actor: Actor = require(Permission.WRITE),
) -> LiveCodeOut:
    service.set_staff_online(
        session, actor=actor, live_code_id=live_code_id, user_id=user_id, online=body.online
    )
    return live_code_out(
        session, service.get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id)
    )


@router.get("/{live_code_id}/stats", response_model=LiveCodeStats)
def code_stats(
    live_code_id: int,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    start: date | None = None,
    end: date | None = None,
) -> LiveCodeStats:
    """Scans, distinct scanners, new and returning adds, deletions by day and by staff member over
    [start, end] (default: the last 30 days); definitions in docs/livecodes.md."""
    end = end or utcnow().date()
    start = start or end - timedelta(days=29)
    return stats.code_stats(
        session, workspace_id=actor.workspace_id, live_code_id=live_code_id, start=start, end=end
    )


@router.get("/{live_code_id}/adds", response_model=list[AddOut])
def adds(
    live_code_id: int,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AddOut]:
    """The code's latest attributed adds, newest first."""
    service.get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id)
    names = {m.user_id: m.display_name for m in auth.list_members(session, workspace_id=actor.workspace_id)}
    return [
        AddOut(
            id=a.id,
            customer_id=a.customer_id,
            staff_user_id=a.staff_user_id,
            staff_name=names.get(a.staff_user_id, "") if a.staff_user_id else "",
            external_userid=a.external_userid,
            is_new_customer=a.is_new_customer,
            added_at=a.added_at,
            deleted_at=a.deleted_at,
            welcome_status=a.welcome_status,
        )
        for a in attribution.adds_of(
            session, workspace_id=actor.workspace_id, live_code_id=live_code_id, limit=limit
        )
    ]


def _download_name(code: LiveCode, size: str, extension: str) -> str:
    return f'attachment; filename="livecode-{code.id}-{size}.{extension}"'


@router.get("/{live_code_id}/qr.{extension}")
def qr_image(
    request: Request,
    live_code_id: int,
    extension: str,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    size: str = "8cm",
    download: bool = False,
) -> Response:
    """The code's QR (its landing URL) as PNG or SVG, `size` one of screen, 5cm, 8cm, 15cm (300 dpi)."""
    code = service.get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id)
    if extension not in qr.FORMATS:
        raise ValidationFailed(f"{extension!r} is not an image format", where="format", hint="png or svg")
    url = landing_url(request, code)
    body = qr.png(url, size=size) if extension == "png" else qr.svg(url, size=size)
    headers = {"Content-Disposition": _download_name(code, size, extension)} if download else {}
    media = "image/png" if extension == "png" else "image/svg+xml"
    return Response(body, media_type=media, headers={**headers, "Cache-Control": "private, max-age=300"})


@router.post("/{live_code_id}/qr-logo.png")
def qr_with_logo(
    request: Request,
    live_code_id: int,
    session: DbSession,
    logo: Annotated[UploadFile, File(description="PNG or JPEG, under 2 MB")],
    size: Annotated[str, Form()] = "8cm",
    actor: Actor = require(Permission.READ),
) -> Response:
    """The code's QR as PNG with `logo` in its centre (error correction H)."""
    code = service.get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id)
    data = logo.file.read(LOGO_MAX_BYTES + 1)
    body = qr.png(landing_url(request, code), size=size, logo=data)
    return Response(
        body, media_type="image/png", headers={"Content-Disposition": _download_name(code, size, "png")}
    )
