"""JSON routes of journeys: list, create (from a definition or a shipped template), the journey with its
step counts, a new version with the choice for customers in flight, start / pause / archive, the
enrolments; and the staff task inbox (list, create, complete, per-staff figures)."""

from __future__ import annotations

from fastapi import APIRouter

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.journeys import service
from siyu.journeys.schemas import (
    DefinitionIn,
    EnrolmentOut,
    JourneyDetail,
    JourneyIn,
    JourneyOut,
    StaffFiguresOut,
    StepOut,
    TaskDone,
    TaskIn,
    TaskOut,
    TemplateOut,
    VersionChangeOut,
)
from siyu.web.deps import DbSession, require

router = APIRouter(tags=["journeys"])


def detail(figures: service.JourneyFigures) -> JourneyDetail:
    return JourneyDetail(
        **JourneyOut.model_validate(figures.journey).model_dump(),
        definition=figures.definition.document,
        steps=[StepOut(**vars(s)) for s in figures.steps],
        enrolled=figures.enrolled,
        active=figures.active,
        goal=figures.goal,
        completed=figures.completed,
        exited=figures.exited,
    )


def definition_from(body: JourneyIn) -> dict:  # type: ignore[type-arg]
    if body.template:
        return service.template_definition(
            body.template, live_code_id=body.live_code_id, coupon_template_id=body.coupon_template_id
        )
    if body.definition is None:
        raise ValidationFailed("give a definition or a template", where="definition", hint="docs/journeys.md")
    return body.definition


@router.get("/api/journeys", response_model=list[JourneyOut])
def list_journeys(session: DbSession, actor: Actor = require(Permission.READ)) -> list[JourneyOut]:
    return [
        JourneyOut.model_validate(j) for j in service.list_journeys(session, workspace_id=actor.workspace_id)
    ]


@router.get("/api/journeys/templates", response_model=list[TemplateOut])
def templates(actor: Actor = require(Permission.READ)) -> list[TemplateOut]:
    return [
        TemplateOut(
            key=t.key, name_zh=t.name_zh, name_en=t.name_en, definition=service.template_definition(t.key)
        )
        for t in service.TEMPLATES
    ]


@router.post("/api/journeys", response_model=JourneyDetail, status_code=201)
def create(body: JourneyIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> JourneyDetail:
    journey = service.create_journey(
        session, actor=actor, name=body.name, definition=definition_from(body), template_key=body.template
    )
    return detail(service.journey_figures(session, workspace_id=actor.workspace_id, journey_id=journey.id))


@router.get("/api/journeys/{journey_id}", response_model=JourneyDetail)
def get(journey_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> JourneyDetail:
    return detail(service.journey_figures(session, workspace_id=actor.workspace_id, journey_id=journey_id))


@router.put("/api/journeys/{journey_id}/definition", response_model=VersionChangeOut)
def new_version(
    journey_id: int, body: DefinitionIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> VersionChangeOut:
    change = service.update_definition(
        session,
        actor=actor,
        journey_id=journey_id,
        definition=body.definition,
        in_flight=body.in_flight,
        name=body.name,
    )
    return VersionChangeOut(**vars(change))


def _move(session: DbSession, actor: Actor, journey_id: int, action: str) -> JourneyOut:
    return JourneyOut.model_validate(
        service.set_status(session, actor=actor, journey_id=journey_id, action=action)
    )


@router.post("/api/journeys/{journey_id}/start", response_model=JourneyOut)
def start(journey_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> JourneyOut:
    return _move(session, actor, journey_id, "start")


@router.post("/api/journeys/{journey_id}/pause", response_model=JourneyOut)
def pause(journey_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> JourneyOut:
    return _move(session, actor, journey_id, "pause")


@router.post("/api/journeys/{journey_id}/archive", response_model=JourneyOut)
def archive(journey_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> JourneyOut:
    return _move(session, actor, journey_id, "archive")


@router.get("/api/journeys/{journey_id}/enrolments", response_model=list[EnrolmentOut])
def enrolments(
    journey_id: int,
    session: DbSession,
    customer_id: int | None = None,
    limit: int = 100,
    actor: Actor = require(Permission.READ),
) -> list[EnrolmentOut]:
    found = service.enrolments_of(
        session, actor=actor, journey_id=journey_id, customer_id=customer_id, limit=max(1, min(limit, 1000))
    )
    return [EnrolmentOut.model_validate(e) for e in found]


@router.get("/api/staff-tasks", response_model=list[TaskOut])
def tasks(
    session: DbSession,
    status: str = "open",
    assignee_user_id: int | None = None,
    actor: Actor = require(Permission.READ),
) -> list[TaskOut]:
    found = service.list_tasks(session, actor=actor, status=status, assignee_user_id=assignee_user_id)
    return [TaskOut.model_validate(t) for t in found]


@router.post("/api/staff-tasks", response_model=TaskOut, status_code=201)
def create_task(body: TaskIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> TaskOut:
    task = service.create_task(
        session,
        actor=actor,
        customer_id=body.customer_id,
        title=body.title,
        due_at=body.due_at,
        note=body.note,
    )
    return TaskOut.model_validate(task)


@router.post("/api/staff-tasks/{task_id}/complete", response_model=TaskOut)
def complete(
    task_id: int, body: TaskDone, session: DbSession, actor: Actor = require(Permission.READ)
) -> TaskOut:
    return TaskOut.model_validate(
        service.complete_task(session, actor=actor, task_id=task_id, outcome=body.outcome)
    )


@router.get("/api/staff-tasks/figures", response_model=list[StaffFiguresOut])
def figures(session: DbSession, actor: Actor = require(Permission.READ)) -> list[StaffFiguresOut]:
    return [StaffFiguresOut.model_validate(f) for f in service.staff_figures(session, actor=actor)]
