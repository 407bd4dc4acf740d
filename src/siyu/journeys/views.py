"""Journey pages: the list with the new-journey form (a shipped SOP template or a JSON definition), the
journey page (the steps drawn as a flow with the customers at each step and those who reached the goal,
start / pause / archive, and the builder: the definition as JSON, checked on save, with the choice for
customers in flight), and the staff task inbox (due and overdue tasks, completion, per-staff figures).

Writes run in the request's transaction and redirect; a refused form is shown again with the reason,
inside a savepoint so nothing of it is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.journeys import service
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)
BOX_W, BOX_H, GAP = 260, 56, 34


@dataclass
class Box:
    step_id: str
    kind: str
    label: str
    at_step: int
    passed: int
    x: int
    y: int


@dataclass
class Edge:
    path: str
    side: bool  # a jump past the next step, drawn round the side


def flow(figures: service.JourneyFigures) -> tuple[list[Box], list[Edge], int, int]:
    """The steps as boxes in list order with their edges: a step to the next straight down, any other
    jump as a curve on the right (SVG coordinates)."""
    boxes = []
    where: dict[str, int] = {}
    for position, step in enumerate(figures.steps):
        where[step.step_id] = position
        boxes.append(
            Box(
                step.step_id,
                step.kind,
                step.label,
                step.at_step,
                step.passed,
                20,
                20 + position * (BOX_H + GAP),
            )
        )
    edges = []
    for position, step in enumerate(figures.steps):
        source = boxes[position]
        for rank, target_id in enumerate(step.targets):
            target = boxes[where[target_id]]
            x1, y1 = source.x + BOX_W // 2, source.y + BOX_H
            if where[target_id] == position + 1:
                edges.append(Edge(f"M{x1},{y1} L{x1},{target.y}", False))
                continue
            reach = 40 + 24 * (rank + (where[target_id] - position) % 4)
            right = source.x + BOX_W
            edges.append(
                Edge(
                    f"M{right},{source.y + BOX_H // 2} C{right + reach},{source.y + BOX_H // 2} "
                    f"{right + reach},{target.y + BOX_H // 2} {right},{target.y + BOX_H // 2}",
                    True,
                )
            )
    height = 40 + len(boxes) * (BOX_H + GAP)
    return boxes, edges, BOX_W + 200, height


def readable(document: dict[str, Any]) -> dict[str, Any]:
    """The definition in the order a person reads it: trigger, re-entry, goal, steps; each step's id and
    kind first (stored JSON keeps no key order on PostgreSQL)."""
    ordered: dict[str, Any] = {k: document[k] for k in ("trigger", "reentry", "goal") if k in document}
    ordered["steps"] = [
        {"id": s.get("id"), "kind": s.get("kind"), **{k: v for k, v in s.items() if k not in ("id", "kind")}}
        for s in document.get("steps", [])
    ]
    return {**ordered, **{k: v for k, v in document.items() if k not in ordered}}


def _journey_page(
    request: Request,
    session: Session,
    actor: Actor,
    journey_id: int,
    *,
    error: SiyuError | None = None,
    draft: str | None = None,
    status_code: int = 200,
) -> Response:
    try:
        figures = service.journey_figures(session, workspace_id=actor.workspace_id, journey_id=journey_id)
    except NotFound as exc:
        return render_error(request, exc, session=session, actor=actor)
    boxes, edges, width, height = flow(figures)
    return render(
        request,
        "journeys/detail.html",
        {
            "f": figures,
            "journey": figures.journey,
            "boxes": boxes,
            "edges": edges,
            "width": width,
            "height": height,
            "box_w": BOX_W,
            "box_h": BOX_H,
            "definition": draft
            if draft is not None
            else json.dumps(readable(figures.definition.document), ensure_ascii=False, indent=2),
            "versions": service.versions(session, workspace_id=actor.workspace_id, journey_id=journey_id),
            "can_write": actor.can(Permission.WRITE),
            "error": error,
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


def _list_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    error: SiyuError | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "journeys/list.html",
        {
            "journeys": service.list_journeys(session, workspace_id=actor.workspace_id),
            "templates": service.TEMPLATES,
            "can_write": actor.can(Permission.WRITE),
            "error": error,
            "v": values or {},
        },
        session=session,
        actor=actor,
        status_code=status_code,
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


@router.post("/journeys")
def create(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    values = {k: form_text(form, k) for k in ("name", "template", "definition")}
    try:
        if values["template"]:
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
        return _list_page(request, session, actor, error=error, values=values, status_code=error.status_code)
    return RedirectResponse(f"/journeys/{journey.id}", status_code=303)


@router.get("/journeys/{journey_id}")
def detail_page(request: Request, session: DbSession, actor: CurrentActor, journey_id: int) -> Response:
    actor.require(Permission.READ)
    return _journey_page(request, session, actor, journey_id)


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
    except SiyuError as error:
        return _journey_page(
            request, session, actor, journey_id, error=error, draft=text, status_code=error.status_code
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
