"""Broadcast pages: the list, the create form (segment or list, channels with fallback, content per
channel, schedule, variant B and a holdout), and the detail page with live progress (polling the JSON
progress endpoint), the pause / resume / cancel buttons and the results.

Writes run in the request's transaction and redirect (post/redirect/get); a refused form is shown
again with the reason, inside a savepoint so nothing of it is written.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.service import Actor, Permission
from siyu.broadcasts import service
from siyu.broadcasts.models import Broadcast
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.coupons import service as coupons
from siyu.segments import service as segments
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error
from siyu.workspaces import service as workspaces

router = APIRouter(include_in_schema=False)
CHANNELS = ("wecom", "sms", "email")
_SPLIT = re.compile(r"[\s,，;；]+")


def _number(text: str, *, where: str, default: float) -> float:
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValidationFailed(f"{text[:40]!r} is not a number", where=where) from None


def _content(form: FormData, channels: list[str], suffix: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {}
    for channel in channels:
        text = form_text(form, f"{channel}_text{suffix}") or (
            form_text(form, f"{channel}_text") if suffix else ""
        )
        body[channel] = {"text": text}
        if channel == "email":
            body[channel]["subject"] = form_text(form, "email_subject")
    return body


def _create_from_form(session: Session, actor: Actor, form: FormData) -> Broadcast:
    channels = [c for c in (form_text(form, "channel_1"), form_text(form, "channel_2")) if c]
    channels = list(dict.fromkeys(channels))
    content = _content(form, channels)
    variants = None
    if any(form_text(form, f"{c}_text_b") for c in channels):
        variants = {
            "a": {"weight": 1, "content": content},
            "b": {"weight": 1, "content": _content(form, channels, "_b")},
        }
    send_at = None
    if form_text(form, "send_at"):
        zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=actor.workspace_id).timezone)
        try:
            send_at = datetime.fromisoformat(form_text(form, "send_at")).replace(tzinfo=zone)
        except ValueError:
            raise ValidationFailed("the scheduled time is not a date and time", where="send_at") from None
    kwargs: dict[str, Any] = {}
    if form_text(form, "audience") == "list":
        values = [v for v in _SPLIT.split(form_text(form, "customer_list")) if v]
        if not values:
            raise ValidationFailed(
                "the list is empty", where="customer_list", hint="one id or phone per line"
            )
        if form_text(form, "list_kind") == "phone":
            kwargs.update(identity_kind="phone", identity_values=values)
        else:
            if not all(v.isdigit() and len(v) <= 12 for v in values):
                raise ValidationFailed(
                    "the list holds something other than customer ids",
                    where="customer_list",
                    hint="or choose phones",
                )
            kwargs["customer_ids"] = [int(v) for v in values]
    else:
        segment = form_text(form, "segment_id")
        if not segment.isdigit():
            raise ValidationFailed("choose a segment", where="segment_id")
        kwargs["segment_id"] = int(segment)
    return service.create_broadcast(
        session,
        actor=actor,
        name=form_text(form, "name"),
        purpose=form_text(form, "purpose") or "marketing",
        channel_preference=channels,
        content=content,
        variants=variants,
        holdout_share=_number(form_text(form, "holdout"), where="holdout", default=0.0) / 100,
        send_at=send_at,
        conversion_window_days=int(_number(form_text(form, "window"), where="window", default=7)),
        coupon_template_id=int(coupon)
        if (coupon := form_text(form, "coupon_template_id")).isdigit()
        else None,
        **kwargs,
    )


def _form_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    values: dict[str, Any],
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "broadcasts/form.html",
        {
            "v": values,
            "segments": segments.list_segments(session, workspace_id=actor.workspace_id),
            "coupon_templates": coupons.list_templates(session, workspace_id=actor.workspace_id),
            "channels": CHANNELS,
            "error": error,
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


@router.get("/broadcasts")
def list_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    broadcasts = service.list_broadcasts(session, actor=actor)
    names = {
        s.id: s.name
        for s in segments.list_segments(session, workspace_id=actor.workspace_id, include_deleted=True)
    }
    return render(
        request,
        "broadcasts/list.html",
        {"broadcasts": broadcasts, "segment_names": names, "can_write": actor.can(Permission.WRITE)},
        session=session,
        actor=actor,
    )


@router.get("/broadcasts/new")
def new_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    values = {
        "audience": "segment",
        "channel_1": "wecom",
        "channel_2": "sms",
        "purpose": "marketing",
        "window": 7,
    }
    return _form_page(request, session, actor, values=values)


@router.post("/broadcasts")
def create(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    try:
        with session.begin_nested():  # a savepoint: a refused form leaves nothing behind
            broadcast = _create_from_form(session, actor, form)
            if form_text(form, "start") == "1":
                service.start_broadcast(session, actor=actor, broadcast_id=broadcast.id)
    except SiyuError as error:
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        return _form_page(request, session, actor, values=values, error=error, status_code=error.status_code)
    return RedirectResponse(f"/broadcasts/{broadcast.id}?saved=1", status_code=303)


@router.get("/broadcasts/{broadcast_id}")
def detail_page(request: Request, session: DbSession, actor: CurrentActor, broadcast_id: int) -> Response:
    try:
        broadcast = service.get_broadcast(session, actor=actor, broadcast_id=broadcast_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    segment_name = None
    if broadcast.segment_id is not None:
        names = {
            s.id: s.name
            for s in segments.list_segments(session, workspace_id=actor.workspace_id, include_deleted=True)
        }
        segment_name = names.get(broadcast.segment_id)
    return render(
        request,
        "broadcasts/detail.html",
        {
            "b": broadcast,
            "segment_name": segment_name,
            "progress": service.progress(session, actor=actor, broadcast_id=broadcast_id),
            "results": service.results(session, actor=actor, broadcast_id=broadcast_id),
            "count_keys": [*service.OUTCOMES, *service.MESSAGE_STATUSES],
            "can_write": actor.can(Permission.WRITE),
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        actor=actor,
    )


def _act(request: Request, session: Session, actor: Actor, broadcast_id: int, verb: Any) -> Response:
    actor.require(Permission.WRITE)
    try:
        with session.begin_nested():
            verb(session, actor=actor, broadcast_id=broadcast_id)
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/broadcasts/{broadcast_id}", status_code=303)


@router.post("/broadcasts/{broadcast_id}/start")
def start(request: Request, session: DbSession, actor: CurrentActor, broadcast_id: int) -> Response:
    return _act(request, session, actor, broadcast_id, service.start_broadcast)


@router.post("/broadcasts/{broadcast_id}/pause")
def pause(request: Request, session: DbSession, actor: CurrentActor, broadcast_id: int) -> Response:
    return _act(request, session, actor, broadcast_id, service.pause_broadcast)


@router.post("/broadcasts/{broadcast_id}/resume")
def resume(request: Request, session: DbSession, actor: CurrentActor, broadcast_id: int) -> Response:
    return _act(request, session, actor, broadcast_id, service.resume_broadcast)


@router.post("/broadcasts/{broadcast_id}/cancel")
def cancel(request: Request, session: DbSession, actor: CurrentActor, broadcast_id: int) -> Response:
    return _act(request, session, actor, broadcast_id, service.cancel_broadcast)
