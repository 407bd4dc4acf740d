"""Pages of content: message templates (list, edit with a live preview for a chosen customer), the
content library (话术库: search, groups, tags, save, copy), and the public redirect of tracked links.

Writes run in the request's transaction and redirect (post/redirect/get); a refused form is shown
again with every problem, inside a savepoint so nothing of it is written.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.service import Actor, Permission
from siyu.content import service
from siyu.content.models import MessageTemplate, SnippetKind
from siyu.content.schemas import SnippetIn, TemplateIn
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.customers import service as customers
from siyu.web.deps import CurrentActor, DbSession, get_database, rate_limits
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)
REDIRECT_RATE = "60/minute"  # visits of short links per client address (core.ratelimit)


def variants_from_form(form: FormData) -> dict[str, dict[str, Any]]:
    """The channel variants of the edit form; a channel whose fields are all empty is left out."""
    variants: dict[str, dict[str, Any]] = {}
    wecom_text = form_text(form, "wecom_text")
    materials = [
        k.strip() for k in form_text(form, "wecom_materials").replace("，", ",").split(",") if k.strip()
    ]
    if wecom_text or materials:
        variants["wecom"] = {"text": wecom_text, "attachments": [{"snippet": k} for k in materials]}
    if form_text(form, "sms_text"):
        variants["sms"] = {"text": form_text(form, "sms_text"), "sign_name": form_text(form, "sms_sign_name")}
    if form_text(form, "email_subject") or form_text(form, "email_text") or form_text(form, "email_html"):
        variants["email"] = {
            "subject": form_text(form, "email_subject"),
            "text": form_text(form, "email_text"),
        }
        if form_text(form, "email_html"):
            variants["email"]["html"] = form_text(form, "email_html")
    return variants


def _values(template: MessageTemplate | None, form: FormData | None = None) -> dict[str, Any]:
    if form is not None:
        return {k: form_text(form, k) for k in form}
    if template is None:
        return {}
    v = template.variants
    wecom, sms, email = v.get("wecom", {}), v.get("sms", {}), v.get("email", {})
    return {
        "name": template.name,
        "description": template.description,
        "wecom_text": wecom.get("text", ""),
        "wecom_materials": ", ".join(a["snippet"] for a in wecom.get("attachments", []) if "snippet" in a),
        "sms_text": sms.get("text", ""),
        "sms_sign_name": sms.get("sign_name", ""),
        "email_subject": email.get("subject", ""),
        "email_text": email.get("text", ""),
        "email_html": email.get("html", ""),
    }


def _form_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    template: MessageTemplate | None,
    values: dict[str, Any],
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    page = customers.search_customers(session, actor=actor, limit=20)
    return render(
        request,
        "content/template_form.html",
        {
            "template": template,
            "v": values,
            "error": error,
            "problems": (error.details.get("problems", []) if error else []),
            "picker": page.items,
            "variables": service.VARIABLES,
            "texts": service.list_snippets(session, workspace_id=actor.workspace_id, kind=SnippetKind.TEXT),
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


@router.get("/content/templates")
def templates_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return render(
        request,
        "content/templates.html",
        {
            "templates": service.list_templates(session, workspace_id=actor.workspace_id),
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
    )


@router.get("/content/templates/new")
def new_template_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    return _form_page(request, session, actor, template=None, values={})


def _template_in(form: FormData) -> TemplateIn:
    return TemplateIn(
        name=form_text(form, "name"),
        description=form_text(form, "description"),
        variants=variants_from_form(form),
    )


@router.post("/content/templates")
def create_template(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    try:
        with session.begin_nested():
            template = service.create_template(session, actor=actor, body=_template_in(form))
    except SiyuError as error:
        return _form_page(
            request,
            session,
            actor,
            template=None,
            values=_values(None, form),
            error=error,
            status_code=error.status_code,
        )
    return RedirectResponse(f"/content/templates/{template.id}?saved=1", status_code=303)


@router.get("/content/templates/{message_template_id}")
def edit_template_page(
    request: Request, session: DbSession, actor: CurrentActor, message_template_id: int
) -> Response:
    actor.require(Permission.READ)
    try:
        template = service.get_template(
            session, workspace_id=actor.workspace_id, template_id=message_template_id
        )
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return _form_page(request, session, actor, template=template, values=_values(template))


@router.post("/content/templates/{message_template_id}")
def update_template(
    request: Request, session: DbSession, actor: CurrentActor, message_template_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    try:
        template = service.get_template(
            session, workspace_id=actor.workspace_id, template_id=message_template_id
        )
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    try:
        with session.begin_nested():
            service.update_template(
                session, actor=actor, template_id=message_template_id, body=_template_in(form)
            )
    except SiyuError as error:
        return _form_page(
            request, session, actor, template=template, values=_values(None, form), error=error,
            status_code=error.status_code,
        )  # fmt: skip
    return RedirectResponse(f"/content/templates/{message_template_id}?saved=1", status_code=303)


@router.get("/content/library")
def library_page(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    q: str = "",
    group: str = "",
    tag: str = "",
) -> Response:
    actor.require(Permission.READ)
    return _library(request, session, actor, q=q, group=group, tag=tag)


def _library(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    q: str = "",
    group: str = "",
    tag: str = "",
    values: dict[str, Any] | None = None,
    editing: int | None = None,
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    found = service.list_snippets(session, workspace_id=actor.workspace_id, query=q, group=group, tag=tag)
    every = service.list_snippets(session, workspace_id=actor.workspace_id)
    return render(
        request,
        "content/library.html",
        {
            "snippets": found,
            "q": q,
            "group": group,
            "tag": tag,
            "groups": service.groups(session, workspace_id=actor.workspace_id),
            "tags": sorted({t for s in every for t in (s.tags or [])}),
            "kinds": [k.value for k in SnippetKind],
            "v": values or {"kind": "text"},
            "editing": editing,
            "error": error,
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


def snippet_from_form(form: FormData) -> SnippetIn:
    kind = form_text(form, "kind") or "text"
    names = {
        "image": ("url",),
        "link": ("title", "url", "desc", "picurl"),
        "miniprogram": ("title", "appid", "page"),
    }
    fields = {n: form_text(form, f"field_{n}") for n in names.get(kind, ())}
    tags = [t.strip() for t in form_text(form, "tags").replace("，", ",").split(",") if t.strip()]
    try:
        return SnippetIn(
            key=form_text(form, "key"), kind=kind, title=form_text(form, "title"), group_name=form_text(form, "group_name"),
            tags=tags, text=form_text(form, "text"), fields={k: v for k, v in fields.items() if v},
        )  # fmt: skip
    except ValueError as error:
        raise ValidationFailed(f"the form is not complete: {error}"[:300], where="snippet") from None


@router.post("/content/library")
def create_snippet(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    try:
        with session.begin_nested():
            snippet = service.create_snippet(session, actor=actor, body=snippet_from_form(form))
    except SiyuError as error:
        values = {k: form_text(form, k) for k in form}
        return _library(request, session, actor, values=values, error=error, status_code=error.status_code)
    return RedirectResponse(f"/content/library?saved={snippet.id}", status_code=303)


def _snippet_values(snippet: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": snippet.title, "key": snippet.key, "kind": snippet.kind, "group_name": snippet.group_name,
        "tags": ", ".join(snippet.tags or []), "text": snippet.text,
    }  # fmt: skip
    values.update({f"field_{k}": v for k, v in (snippet.fields or {}).items()})
    return values


@router.get("/content/library/{snippet_id}")
def edit_snippet_page(request: Request, session: DbSession, actor: CurrentActor, snippet_id: int) -> Response:
    actor.require(Permission.WRITE)
    try:
        snippet = service.get_snippet(session, workspace_id=actor.workspace_id, snippet_id=snippet_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return _library(request, session, actor, values=_snippet_values(snippet), editing=snippet.id)


@router.post("/content/library/{snippet_id}")
def update_snippet(
    request: Request, session: DbSession, actor: CurrentActor, snippet_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    try:
        service.get_snippet(session, workspace_id=actor.workspace_id, snippet_id=snippet_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    try:
        with session.begin_nested():
            service.update_snippet(session, actor=actor, snippet_id=snippet_id, body=snippet_from_form(form))
    except SiyuError as error:
        values = {k: form_text(form, k) for k in form}
        return _library(
            request,
            session,
            actor,
            values=values,
            editing=snippet_id,
            error=error,
            status_code=error.status_code,
        )
    return RedirectResponse(f"/content/library?saved={snippet_id}", status_code=303)


def _client_key(request: Request) -> str:
    host = request.client.host if request.client else "unknown"
    return hashlib.sha256(f"short-link\x1f{host}".encode()).hexdigest()[:32]


@router.get("/s/{token}")
def short_link(request: Request, token: str) -> Response:
    """A tracked link: redirect to the URL stored when its message was rendered (never to one the
    request names), counting the visit. An unknown token gets the same 404 as a malformed one."""
    verdict = rate_limits(request).hit("short_link.visit", REDIRECT_RATE, _client_key(request))
    if not verdict.allowed:
        return Response(
            "too many requests", status_code=429, headers={"Retry-After": str(verdict.retry_after_seconds)}
        )
    url = None
    if len(token) <= 64:
        # a GET that writes: its own write transaction (the request's session only reads)
        with get_database(request).transaction() as session:
            url = service.follow(session, token=token)
    if url is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return RedirectResponse(
        url, status_code=302, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )
