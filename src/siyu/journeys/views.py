"""Journey pages: the list (journeys, and the shipped SOP templates to open in the builder), the builder
for a new journey or a new version (trigger, re-entry, goal and steps with nested branches, chosen from
the workspace's segments, tags, templates, coupons and experiments; the JSON stays as the advanced view),
the journey page (the steps drawn as the graph they form, with the customers at each step and those who
reached the goal; start / pause / archive), and the staff task inbox (due and overdue tasks, completion,
per-staff figures).

Writes run in the request's transaction and redirect; a refused form is shown again with the reason, at
the step it names, inside a savepoint so nothing of it is written.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.journeys import builder, flow, service
from siyu.journeys.messages import MESSAGES
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.i18n import language_of
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)
# the builder's own strings (journeys.b.* in messages.py), handed to its script as one JSON object
BUILDER_LABELS = sorted(k.removeprefix("journeys.b.") for k in MESSAGES if k.startswith("journeys.b."))


def readable(document: dict[str, Any]) -> dict[str, Any]:
    """The definition in the order a person reads it: trigger, re-entry, goal, steps; each step's id and
    kind first (stored JSON keeps no key order on PostgreSQL)."""
    ordered: dict[str, Any] = {k: document[k] for k in ("trigger", "reentry", "goal") if k in document}
    ordered["steps"] = [
        {"id": s.get("id"), "kind": s.get("kind"), **{k: v for k, v in s.items() if k not in ("id", "kind")}}
        for s in document.get("steps", [])
    ]
    return {**ordered, **{k: v for k, v in document.items() if k not in ordered}}


def _pretty(document: dict[str, Any]) -> str:
    return json.dumps(readable(document), ensure_ascii=False, indent=2)


def _journey_page(
    request: Request,
    session: Session,
    actor: Actor,
    journey_id: int,
    *,
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    try:
        figures = service.journey_figures(session, workspace_id=actor.workspace_id, journey_id=journey_id)
    except NotFound as exc:
        return render_error(request, exc, session=session, actor=actor)
    drawing = flow.layout(figures)
    return render(
        request,
        "journeys/detail.html",
        {
            "f": figures,
            "journey": figures.journey,
            "flow": drawing,
            "box_w": flow.BOX_W,
            "box_h": flow.BOX_H,
            "definition": _pretty(figures.definition.document),
            "versions": service.versions(session, workspace_id=actor.workspace_id, journey_id=journey_id),
            "can_write": actor.can(Permission.WRITE),
            "error": error,
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


def _builder_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    journey_id: int | None,
    name: str,
    template_key: str,
    definition: str,
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    """The builder: the definition as a trigger, re-entry, goal and steps with nested branches, kept in
    sync with its JSON (the advanced view, which is what the form sends); a refused save shows the error
    at the step it names."""
    journey = None
    if journey_id is not None:
        try:
            journey = service.get_journey(session, workspace_id=actor.workspace_id, journey_id=journey_id)
        except NotFound as exc:
            return render_error(request, exc, session=session, actor=actor)
    try:
        submitted: Any = json.loads(definition)
    except ValueError:
        submitted = None
    return render(
        request,
        "journeys/builder.html",
        {
            "journey": journey,
            "name": name,
            "template_key": template_key,
            "definition": definition,
            "error": error,
            "builder": {
                "catalog": builder.catalog(session, actor=actor),
                "error": None
                if error is None
                else {"message": error.message, "where": error.where, "hint": error.hint},
                "error_at": builder.error_place(error, submitted),
            },
            "label_keys": BUILDER_LABELS,
            "templates": service.TEMPLATES,
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


def _list_page(request: Request, session: Session, actor: Actor) -> Response:
    return render(
        request,
        "journeys/list.html",
        {
            "journeys": service.list_journeys(session, workspace_id=actor.workspace_id),
            "templates": service.TEMPLATES,
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
    )


def _parse(text: str, *, where: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"the definition is not JSON: {exc.msg}", where=f"{where}, line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise ValidationFailed("the definition is a JSON object", where=where)
    return document


@router.get("/journeys")
def list_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return _list_page(request, session, actor)


@router.get("/journeys/new")
def new_page(request: Request, session: DbSession, actor: CurrentActor, template: str = "") -> Response:
    """The builder for a new journey, empty or opened on a shipped SOP template."""
    actor.require(Permission.WRITE)
    try:
        document = service.template_definition(template) if template else None
    except NotFound as exc:
        return render_error(request, exc, session=session, actor=actor)
    names = {t.key: (t.name_zh if language_of(request) == "zh-CN" else t.name_en) for t in service.TEMPLATES}
    return _builder_page(
        request,
        session,
        actor,
        journey_id=None,
        name=names.get(template, ""),
        template_key=template,
        definition=_pretty(document) if document else "",
    )


@router.post("/journeys")
def create(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    """A new journey from the builder's definition, or straight from a template when none is sent."""
    actor.require(Permission.WRITE)
    values = {k: form_text(form, k) for k in ("name", "template", "definition")}
    try:
        if values["template"] and not values["definition"].strip():
            definition = service.template_definition(values["template"])
        else:
            definition = _parse(values["definition"], where="definition")
        with session.begin_nested():
            journey = service.create_journey(
                session,
                actor=actor,
                name=values["name"],
                definition=definition,
                template_key=values["template"] or None,
            )
    except SiyuError as error:
        return _builder_page(
            request,
            session,
            actor,
            journey_id=None,
            name=values["name"],
            template_key=values["template"],
            definition=values["definition"],
            error=error,
            status_code=error.status_code,
        )
    return RedirectResponse(f"/journeys/{journey.id}", status_code=303)


@router.get("/journeys/{journey_id}")
def detail_page(request: Request, session: DbSession, actor: CurrentActor, journey_id: int) -> Response:
    actor.require(Permission.READ)
    return _journey_page(request, session, actor, journey_id)


@router.get("/journeys/{journey_id}/edit")
def edit_page(request: Request, session: DbSession, actor: CurrentActor, journey_id: int) -> Response:
    """The builder on the journey's current version; saving makes a new version."""
    actor.require(Permission.WRITE)
    try:
        journey = service.get_journey(session, workspace_id=actor.workspace_id, journey_id=journey_id)
    except NotFound as exc:
        return render_error(request, exc, session=session, actor=actor)
    current = service.definition_of(session, journey_id=journey.id, version=journey.version)
    return _builder_page(
        request,
        session,
        actor,
        journey_id=journey.id,
        name=journey.name,
        template_key=journey.template_key or "",
        definition=_pretty(current.document),
    )


@router.post("/journeys/{journey_id}/definition")
def save_definition(
    request: Request, session: DbSession, actor: CurrentActor, journey_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    text = form_text(form, "definition")
    try:
        with session.begin_nested():
            service.update_definition(
                session,
                actor=actor,
                journey_id=journey_id,
                definition=_parse(text, where="definition"),
                in_flight=form_text(form, "in_flight"),
            )
    except NotFound as exc:
        return render_error(request, exc, session=session, actor=actor)
    except SiyuError as error:
        journey = service.get_journey(session, workspace_id=actor.workspace_id, journey_id=journey_id)
        return _builder_page(
            request,
            session,
            actor,
            journey_id=journey_id,
            name=journey.name,
            template_key=journey.template_key or "",
            definition=text,
            error=error,
            status_code=error.status_code,
        )
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


def _status(request: Request, session: Session, actor: Actor, journey_id: int, action: str) -> Response:
    try:
        with session.begin_nested():
            service.set_status(session, actor=actor, journey_id=journey_id, action=action)
    except SiyuError as error:
        return _journey_page(request, session, actor, journey_id, error=error, status_code=error.status_code)
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


@router.post("/journeys/{journey_id}/start")
def start(request: Request, session: DbSession, actor: CurrentActor, journey_id: int) -> Response:
    return _status(request, session, actor, journey_id, "start")


@router.post("/journeys/{journey_id}/pause")
def pause(request: Request, session: DbSession, actor: CurrentActor, journey_id: int) -> Response:
    return _status(request, session, actor, journey_id, "pause")


@router.post("/journeys/{journey_id}/archive")
def archive(request: Request, session: DbSession, actor: CurrentActor, journey_id: int) -> Response:
    return _status(request, session, actor, journey_id, "archive")


@router.get("/tasks")
def inbox(request: Request, session: DbSession, actor: CurrentActor, status: str = "open") -> Response:
    actor.require(Permission.READ)
    tasks = service.list_tasks(session, actor=actor, status=status)
    names = {m.user_id: m.display_name for m in auth.list_members(session, workspace_id=actor.workspace_id)}
    return render(
        request,
        "journeys/tasks.html",
        {
            "tasks": tasks,
            "status": status,
            "now": utcnow(),
            "names": names,
            "figures": service.staff_figures(session, actor=actor),
            "sees_all": actor.can(Permission.MANAGE),
        },
        session=session,
        actor=actor,
    )


@router.post("/tasks/{task_id}/complete")
def complete(request: Request, session: DbSession, actor: CurrentActor, task_id: int, form: Form) -> Response:
    service.complete_task(session, actor=actor, task_id=task_id, outcome=form_text(form, "outcome"))
    return RedirectResponse("/tasks", status_code=303)
