"""Group post pages (群SOP): the list with each post's next occurrence, the create form (content, the
groups by group, owner or group tag, once / daily / weekly at a local time), and a post's page with its
occurrences and each owner's send. Included in the communities router."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from siyu.auth.service import Actor, Permission
from siyu.communities import posts, service
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)


def _list(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def attachments_of(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The WeCom attachments the form describes: an image by URL, a link card, a mini-program card."""
    found: list[dict[str, Any]] = []
    if values.get("image_url"):
        found.append({"msgtype": "image", "image": {"pic_url": values["image_url"]}})
    if values.get("link_url"):
        link = {"title": values.get("link_title") or values["link_url"], "url": values["link_url"]}
        if values.get("link_picurl"):
            link["picurl"] = values["link_picurl"]
        if values.get("link_desc"):
            link["desc"] = values["link_desc"]
        found.append({"msgtype": "link", "link": link})
    if values.get("mp_appid"):
        if not values.get("mp_title") or not values.get("mp_page"):
            raise ValidationFailed(
                "a mini-program card needs its title, appid, page and cover image", where="miniprogram"
            )
        # the cover's media_id is added at each send, from the kept image (posts.attachments_to_send)
        found.append(
            {
                "msgtype": "miniprogram",
                "miniprogram": {
                    "title": values["mp_title"],
                    "appid": values["mp_appid"],
                    "page": values["mp_page"],
                },
            }
        )
    return found


def _cover(form: FormData) -> tuple[str, bytes] | None:
    """The uploaded mini-program cover, if the form carries one (an empty file input sends no file)."""
    upload = form.get("mp_cover")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    return upload.filename, upload.file.read()


def _choices(session: Session, workspace_id: int) -> dict[str, Any]:
    groups = [g for g in service.list_groups(session, workspace_id=workspace_id) if g.dismissed_at is None]
    tags = sorted(
        {
            name
            for names in service.tags_by_group(session, workspace_id=workspace_id).values()
            for name in names
        }
    )
    names = {g.chat_id: g.name or g.chat_id for g in groups}
    return {
        "groups": groups,
        "names": names,
        "owners": sorted({g.owner for g in groups if g.owner}),
        "group_tags": tags,
    }


def _list_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    values: dict[str, Any],
    error: SiyuError | None = None,
) -> Response:
    rows = []
    for post in posts.list_posts(session, workspace_id=actor.workspace_id):
        last = posts.occurrences(session, workspace_id=actor.workspace_id, post_id=post.id, limit=1)
        rows.append({"post": post, "last": last[0] if last else None})
    return render(
        request,
        "communities/posts.html",
        {
            "rows": rows,
            "v": values,
            "error": error,
            "can_write": actor.can(Permission.WRITE),
            **_choices(session, actor.workspace_id),
        },
        session=session,
        actor=actor,
        status_code=error.status_code if error else 200,
    )


DEFAULTS: dict[str, Any] = {"target": "groups", "repeat": "daily", "time_of_day": "11:00", "weekdays": []}


@router.get("/group-posts")
def posts_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return _list_page(
        request,
        session,
        actor,
        values={
            **DEFAULTS,
            "start_on": posts.local_today(session, workspace_id=actor.workspace_id).isoformat(),
            "targets": [],
        },
    )


@router.post("/group-posts")
def create_post(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    fields = [
        "name",
        "text",
        "image_url",
        "link_title",
        "link_url",
        "link_picurl",
        "link_desc",
        "mp_title",
        "mp_appid",
        "mp_page",
        "target",
        "repeat",
        "time_of_day",
        "start_on",
    ]
    values: dict[str, Any] = {name: form_text(form, name) for name in fields}
    values["weekdays"] = _list(form, "weekdays")
    values["targets"] = _list(form, f"target_{values['target']}") if values["target"] in posts.TARGETS else []
    try:
        try:
            start_on = date.fromisoformat(values["start_on"])
        except ValueError:
            raise ValidationFailed(
                f"{values['start_on'][:20]!r} is not a date", where="start_on", hint="YYYY-MM-DD"
            ) from None
        if not all(d.isdigit() for d in values["weekdays"]):
            raise ValidationFailed("weekdays are 0 (Monday) to 6 (Sunday)", where="weekdays")
        spec = posts.PostSpec(
            name=values["name"],
            text=values["text"],
            attachments=attachments_of(values),
            target=values["target"],
            target_values=values["targets"][:2000],
            repeat=values["repeat"],
            time_of_day=values["time_of_day"],
            weekdays=[int(d) for d in values["weekdays"]],
            start_on=start_on,
            cover=_cover(form),
        )
        with session.begin_nested():
            post = posts.create_post(session, actor=actor, spec=spec)
    except SiyuError as error:
        return _list_page(request, session, actor, values=values, error=error)
    return RedirectResponse(f"/group-posts/{post.id}?saved=1", status_code=303)


@router.get("/group-posts/{post_id}")
def post_page(request: Request, session: DbSession, actor: CurrentActor, post_id: int) -> Response:
    actor.require(Permission.READ)
    try:
        post = posts.get_post(session, workspace_id=actor.workspace_id, post_id=post_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    names = {g.chat_id: g.name for g in service.list_groups(session, workspace_id=actor.workspace_id)}
    return render(
        request,
        "communities/post.html",
        {
            "post": post,
            "plan": posts.plan_for(session, post),
            "occurrences": posts.occurrences(session, workspace_id=actor.workspace_id, post_id=post.id),
            "names": names,
            "saved": request.query_params.get("saved") == "1",
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
    )


@router.post("/group-posts/{post_id}/active")
def toggle_post(
    request: Request, session: DbSession, actor: CurrentActor, post_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    try:
        posts.set_active(session, actor=actor, post_id=post_id, active=form_text(form, "active") == "1")
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/group-posts/{post_id}", status_code=303)
