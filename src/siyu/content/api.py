"""JSON routes of content: message templates (save, check, preview for a customer), the content
library (话术库: list, search, save, copy), and click counts of tracked links per source."""

from __future__ import annotations

from fastapi import APIRouter

from siyu.auth.service import Actor, Permission
from siyu.content import service
from siyu.content.schemas import (
    ClicksOut,
    PreviewIn,
    PreviewOut,
    SnippetIn,
    SnippetOut,
    TemplateIn,
    TemplateOut,
)
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/content", tags=["content"])


@router.get("/templates", response_model=list[TemplateOut])
def templates(session: DbSession, actor: Actor = require(Permission.READ)) -> list[TemplateOut]:
    return [
        TemplateOut.model_validate(t)
        for t in service.list_templates(session, workspace_id=actor.workspace_id)
    ]


@router.post("/templates", response_model=TemplateOut, status_code=201)
def create_template(
    body: TemplateIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> TemplateOut:
    """Save a template; refused with every problem (syntax errors with line and column, unknown
    variables, unknown snippets, each channel's rules) in `details.problems`."""
    return TemplateOut.model_validate(service.create_template(session, actor=actor, body=body))


@router.get("/templates/{message_template_id}", response_model=TemplateOut)
def template(
    message_template_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> TemplateOut:
    return TemplateOut.model_validate(
        service.get_template(session, workspace_id=actor.workspace_id, template_id=message_template_id)
    )


@router.put("/templates/{message_template_id}", response_model=TemplateOut)
def update_template(
    message_template_id: int, body: TemplateIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> TemplateOut:
    return TemplateOut.model_validate(
        service.update_template(session, actor=actor, template_id=message_template_id, body=body)
    )


@router.post("/templates/{message_template_id}/preview", response_model=PreviewOut)
def preview_template(
    message_template_id: int, body: PreviewIn, session: DbSession, actor: Actor = require(Permission.READ)
) -> PreviewOut:
    """The template (or the unsaved `variants` given) rendered for one customer, channel by channel."""
    service.get_template(session, workspace_id=actor.workspace_id, template_id=message_template_id)
    return service.preview(
        session,
        actor=actor,
        customer_id=body.customer_id,
        variants=body.variants,
        template_id=message_template_id,
    )


@router.post("/preview", response_model=PreviewOut)
def preview(body: PreviewIn, session: DbSession, actor: Actor = require(Permission.READ)) -> PreviewOut:
    """Unsaved variants rendered for one customer (the edit page's live preview)."""
    return service.preview(session, actor=actor, customer_id=body.customer_id, variants=body.variants)


@router.get("/snippets", response_model=list[SnippetOut])
def snippets(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    q: str = "",
    group: str = "",
    tag: str = "",
    kind: str = "",
) -> list[SnippetOut]:
    """The content library, searched (title, key, text), by group, tag and kind."""
    found = service.list_snippets(
        session, workspace_id=actor.workspace_id, query=q, group=group, tag=tag, kind=kind
    )
    return [SnippetOut.model_validate(s) for s in found]


@router.post("/snippets", response_model=SnippetOut, status_code=201)
def create_snippet(
    body: SnippetIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> SnippetOut:
    return SnippetOut.model_validate(service.create_snippet(session, actor=actor, body=body))


@router.get("/snippets/{snippet_id}", response_model=SnippetOut)
def snippet(snippet_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> SnippetOut:
    return SnippetOut.model_validate(
        service.get_snippet(session, workspace_id=actor.workspace_id, snippet_id=snippet_id)
    )


@router.put("/snippets/{snippet_id}", response_model=SnippetOut)
def update_snippet(
    snippet_id: int, body: SnippetIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> SnippetOut:
    return SnippetOut.model_validate(
        service.update_snippet(session, actor=actor, snippet_id=snippet_id, body=body)
    )


@router.post("/snippets/{snippet_id}/copy", response_model=SnippetOut)
def copy_snippet(snippet_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> SnippetOut:
    """A member copied the snippet to paste it into a chat: counted."""
    return SnippetOut.model_validate(service.copy_snippet(session, actor=actor, snippet_id=snippet_id))


@router.get("/clicks", response_model=ClicksOut)
def clicks(
    source: str, source_ref: str, session: DbSession, actor: Actor = require(Permission.READ)
) -> ClicksOut:
    """Tracked-link clicks of one source (a broadcast, a journey)."""
    return service.clicks(session, workspace_id=actor.workspace_id, source=source, source_ref=source_ref)
