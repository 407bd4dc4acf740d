"""JSON routes for the WeCom settings and staff mapping (`manage`), and the public callback endpoint
that WeCom calls: GET to verify the URL, POST to deliver events (scheme: `siyu.wecom.crypto`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound
from siyu.web.deps import DbSession, require
from siyu.wecom import service
from siyu.wecom.schemas import SettingsIn, SettingsOut, StaffIn, StaffOut

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
