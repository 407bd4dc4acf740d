"""Moments pages (朋友圈): the list (scheduled, submitted, published, and how many staff published
each), the create form (text, up to 9 images uploaded or given by URL, or a link, the staff who post it and the corp tags
of the customers who see it, now or at a time in the workspace's time zone), and a moment's page with
each staff member's publish status. Included in the WeCom router."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error
from siyu.wecom import service as wecom
from siyu.wecom.service.moments import MAX_MOMENT_IMAGES
from siyu.workspaces import service as workspaces

router = APIRouter(include_in_schema=False)


def _files(form: FormData, name: str) -> list[UploadFile]:
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]


def _list_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    values: dict[str, Any],
    error: SiyuError | None = None,
) -> Response:
    return render(
        request,
        "wecom/moments.html",
        {
            "rows": wecom.list_moments(session, workspace_id=actor.workspace_id),
            "staff": wecom.list_staff(session, workspace_id=actor.workspace_id),
            "corp_tags": wecom.corp_tags(session, workspace_id=actor.workspace_id),
            "v": values,
            "error": error,
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
        status_code=error.status_code if error else 200,
    )


@router.get("/moments")
def moments_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return _list_page(request, session, actor, values={"senders": [], "tags": []})


def _scheduled(session: Session, actor: Actor, text: str) -> datetime | None:
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{text[:20]!r} is not a date and time", where="scheduled_for", hint="YYYY-MM-DDTHH:MM"
        ) from None
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=actor.workspace_id).timezone)
    return local.replace(tzinfo=zone)


@router.post("/moments")
def create_moment(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    values: dict[str, Any] = {
        name: form_text(form, name)
        for name in ("text", "link_title", "link_url", "link_image_url", "image_urls", "scheduled_for")
    }
    image_urls = [line.strip() for line in values["image_urls"].splitlines() if line.strip()]
    values["senders"] = [v for v in form.getlist("senders") if isinstance(v, str) and v]
    values["tags"] = [v for v in form.getlist("tags") if isinstance(v, str) and v.isdigit()]
    images = _files(form, "images")
    link_images = _files(form, "link_image")
    videos = _files(form, "video")
    try:
        if len(images) + len(image_urls) > MAX_MOMENT_IMAGES:
            raise ValidationFailed(
                f"{len(images) + len(image_urls)} images; a moment takes at most 9", where="images"
            )
        scheduled_for = _scheduled(session, actor, values["scheduled_for"])
        # every URL is fetched before anything is uploaded: one that fails uploads nothing
        fetched = [
            wecom.fetch_moment_image(url, where=f"image_urls[{position}]")
            for position, url in enumerate(image_urls)
        ]
        link_fetched = (
            wecom.fetch_moment_image(values["link_image_url"], where="link_image_url")
            if values["link_url"] and values["link_image_url"] and not link_images
            else None
        )
        with session.begin_nested():
            media = [
                wecom.upload_moment_image(
                    session, workspace_id=actor.workspace_id, filename=f.filename or "", content=f.file.read()
                )
                for f in images
            ] + [
                wecom.upload_moment_image(
                    session, workspace_id=actor.workspace_id, filename=image.filename, content=image.content
                )
                for image in fetched
            ]
            link = None
            if values["link_url"]:
                if link_images:
                    picture_name, picture = link_images[0].filename or "", link_images[0].file.read()
                elif link_fetched is not None:
                    picture_name, picture = link_fetched.filename, link_fetched.content
                else:
                    raise ValidationFailed(
                        "a link needs its picture", where="link_image", hint="upload one or give its URL"
                    )
                link = {
                    "title": values["link_title"] or values["link_url"],
                    "url": values["link_url"],
                    "media_id": wecom.upload_moment_image(
                        session, workspace_id=actor.workspace_id, filename=picture_name, content=picture
                    ),
                }
            video_media_id = None
            if videos:
                video_media_id = wecom.upload_moment_video(
                    session,
                    workspace_id=actor.workspace_id,
                    filename=videos[0].filename or "",
                    content=videos[0].file.read(),
                )
            moment = wecom.create_moment(
                session,
                workspace_id=actor.workspace_id,
                actor_user_id=actor.user_id,
                text=values["text"] or None,
                image_media_ids=media,
                link=link,
                video_media_id=video_media_id,
                sender_userids=values["senders"] or None,
                visible_tag_ids=[int(t) for t in values["tags"]] or None,
                scheduled_for=scheduled_for,
            )
    except SiyuError as error:
        return _list_page(request, session, actor, values=values, error=error)
    return RedirectResponse(f"/moments/{moment.id}?saved=1", status_code=303)


@router.get("/moments/{moment_id}")
def moment_page(request: Request, session: DbSession, actor: CurrentActor, moment_id: int) -> Response:
    actor.require(Permission.READ)
    try:
        moment = wecom.get_moment(session, workspace_id=actor.workspace_id, moment_id=moment_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    names = {s.wecom_userid: s.name for s in wecom.list_staff(session, workspace_id=actor.workspace_id)}
    return render(
        request,
        "wecom/moment.html",
        {
            "moment": moment,
            "state": wecom.moment_state(moment),
            "staff": wecom.moment_staff(session, workspace_id=actor.workspace_id, moment_id=moment.id),
            "names": names,
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        actor=actor,
    )
