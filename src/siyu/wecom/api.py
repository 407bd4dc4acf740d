"""JSON routes for the WeCom settings and staff mapping (`manage`), moments (朋友圈, images by URL), and
the public callback endpoint that WeCom calls: GET to verify the URL, POST to deliver events (scheme:
`siyu.wecom.crypto`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound
from siyu.web.deps import DbSession, require
from siyu.wecom import service
from siyu.wecom.models import WecomMoment
from siyu.wecom.schemas import MomentIn, MomentOut, SettingsIn, SettingsOut, StaffIn, StaffOut

router = APIRouter(tags=["wecom"])


def _out(request: Request, view: service.SettingsView) -> SettingsOut:
    base = str(request.base_url).rstrip("/")
    return SettingsOut(**vars(view), callback_url=base + view.callback_path)


@router.get("/api/wecom/settings", response_model=SettingsOut)
def get_settings(
    request: Request, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> SettingsOut:
    view = service.view_settings(session, actor=actor)
    if view is None:
        raise NotFound("WeCom is not set up in this workspace", hint="PUT /api/wecom/settings")
    return _out(request, view)


@router.put("/api/wecom/settings", response_model=SettingsOut)
def put_settings(
    request: Request, body: SettingsIn, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> SettingsOut:
    """Enter or change the settings; answers without the secret."""
    return _out(request, service.save_settings(session, actor=actor, **body.model_dump()))


@router.get("/api/wecom/staff", response_model=list[StaffOut])
def list_staff(session: DbSession, actor: Actor = require(Permission.MANAGE)) -> list[StaffOut]:
    return [StaffOut.model_validate(s) for s in service.list_staff(session, workspace_id=actor.workspace_id)]


@router.put("/api/wecom/staff", response_model=StaffOut)
def map_staff(body: StaffIn, session: DbSession, actor: Actor = require(Permission.MANAGE)) -> StaffOut:
    """Say which siyu user a WeCom member is."""
    staff = service.map_staff(session, actor=actor, wecom_userid=body.wecom_userid, user_id=body.user_id)
    return StaffOut.model_validate(staff)


def _moment_out(moment: WecomMoment) -> MomentOut:
    return MomentOut(
        id=moment.id,
        state=service.moment_state(moment),
        jobid=moment.jobid,
        job_status=moment.job_status,
        moment_id=moment.moment_id,
        scheduled_for=moment.scheduled_for,
        created_at=moment.created_at,
        request=moment.request or {},
    )


@router.post("/api/wecom/moments", response_model=MomentOut, status_code=201)
def create_moment(body: MomentIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> MomentOut:
    """A moments post: text with images given by URL (fetched by the server, then uploaded to WeCom), or
    a link whose picture is given by URL; submitted now or at `scheduled_for`."""
    if body.request_key:
        earlier = service.moment_by_request_key(
            session, workspace_id=actor.workspace_id, request_key=body.request_key
        )
        if earlier is not None:
            return _moment_out(earlier)
    # every URL is fetched before anything is uploaded: one that fails uploads nothing
    images = [
        service.fetch_moment_image(url, where=f"image_urls[{position}]")
        for position, url in enumerate(body.image_urls)
    ]
    picture = service.fetch_moment_image(body.link.image_url, where="link.image_url") if body.link else None
    media = [
        service.upload_moment_image(
            session, workspace_id=actor.workspace_id, filename=image.filename, content=image.content
        )
        for image in images
    ]
    link = None
    if body.link is not None and picture is not None:
        link = {
            "title": body.link.title or body.link.url,
            "url": body.link.url,
            "media_id": service.upload_moment_image(
                session, workspace_id=actor.workspace_id, filename=picture.filename, content=picture.content
            ),
        }
    moment = service.create_moment(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        text=body.text or None,
        image_media_ids=media,
        link=link,
        sender_userids=body.sender_userids or None,
        visible_tag_ids=body.visible_tag_ids or None,
        scheduled_for=body.scheduled_for,
        request_key=body.request_key,
    )
    return _moment_out(moment)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.get("/wecom/callback/{callback_key}", response_class=PlainTextResponse, include_in_schema=False)
def verify_callback_url(
    callback_key: str,
    request: Request,
    session: DbSession,
    msg_signature: Annotated[str | None, Query()] = None,
    timestamp: Annotated[str | None, Query()] = None,
    nonce: Annotated[str | None, Query()] = None,
    echostr: Annotated[str | None, Query()] = None,
) -> PlainTextResponse:
    """WeCom's URL verification: answer the decrypted echostr as plain text."""
    echo = service.verify_url(
        session,
        callback_key=callback_key,
        msg_signature=msg_signature,
        timestamp=timestamp,
        nonce=nonce,
        echostr=echostr,
        tolerance_seconds=request.app.state.settings.webhook_tolerance_seconds,
    )
    return PlainTextResponse(echo)


@router.post("/wecom/callback/{callback_key}", response_class=PlainTextResponse, include_in_schema=False)
def receive_callback(
    callback_key: str,
    request: Request,
    session: DbSession,
    body: Annotated[bytes, Depends(_raw_body)],
    msg_signature: Annotated[str | None, Query()] = None,
    timestamp: Annotated[str | None, Query()] = None,
    nonce: Annotated[str | None, Query()] = None,
) -> PlainTextResponse:
    """An event from WeCom: recorded once (a retry changes nothing) and answered "success"."""
    service.receive(
        session,
        callback_key=callback_key,
        msg_signature=msg_signature,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
        tolerance_seconds=request.app.state.settings.webhook_tolerance_seconds,
    )
    return PlainTextResponse("success")
