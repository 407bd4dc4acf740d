"""Journey verbs: create from a definition (or a shipped SOP template), edit into a new version with an
explicit choice for customers in flight, start, pause and archive; and the reads of the journey page
(customers at each step, passed through each step, reached the goal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.content import service as content
from siyu.core import audit
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.journeys import definition as definitions
from siyu.journeys.definition import Definition
from siyu.journeys.models import (
    EnrolmentStatus,
    InFlight,
    Journey,
    JourneyEnrolment,
    JourneyStatus,
    JourneyStepRun,
    JourneyVersion,
)

NAME_MAX = 200
E = JourneyEnrolment


def _clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationFailed("the journey needs a name", where="name", hint="e.g. 新客欢迎 SOP")
    if len(cleaned) > NAME_MAX:
        raise ValidationFailed(f"the name is longer than {NAME_MAX} characters", where="name")
    return cleaned


@lru_cache(maxsize=4096)
def _parsed(journey_id: int, version: int, document_key: str) -> Definition:
    import json

    return definitions.validate(json.loads(document_key))


def definition_of(session: Session, *, journey_id: int, version: int) -> Definition:
    """A version's checked definition (versions never change, so it is parsed once per process)."""
    import json

    document = session.scalar(
        select(JourneyVersion.definition).where(
            JourneyVersion.journey_id == journey_id, JourneyVersion.version == version
        )
    )
    if document is None:
        raise NotFound(f"journey {journey_id} has no version {version}", where="version")
    return _parsed(journey_id, version, json.dumps(document, sort_keys=True))


def get_journey(session: Session, *, workspace_id: int, journey_id: int) -> Journey:
    journey = session.get(Journey, journey_id)
    if journey is None or journey.workspace_id != workspace_id:
        raise NotFound(f"no journey {journey_id} in this workspace", where="journey_id")
    return journey


def list_journeys(session: Session, *, workspace_id: int, include_archived: bool = True) -> list[Journey]:
    query = select(Journey).where(Journey.workspace_id == workspace_id)
    if not include_archived:
        query = query.where(Journey.status != JourneyStatus.ARCHIVED)
    return list(session.scalars(query.order_by(Journey.id.desc())))


def versions(session: Session, *, workspace_id: int, journey_id: int) -> list[JourneyVersion]:
    get_journey(session, workspace_id=workspace_id, journey_id=journey_id)
    return list(
        session.scalars(
            select(JourneyVersion)
            .where(JourneyVersion.journey_id == journey_id)
            .order_by(JourneyVersion.version)
        )
    )


def _check_content(session: Session, *, workspace_id: int, checked: Definition) -> None:
    """Send steps' content is personalised when it is sent: a template that cannot compile is refused
    when the journey is saved, naming its step, not when a customer reaches it."""
    for step_id, step in checked.steps.items():
        if step["kind"] != "send":
            continue
        try:
            content.compile_for_send(session, workspace_id=workspace_id, content=step["content"])
        except ValidationFailed as error:
            raise ValidationFailed(
                error.message,
                where=f"steps ({step_id}).{error.where}",
                hint=error.hint,
                details=error.details,
            ) from error


def create_journey(
    session: Session,
    *,
    actor: Actor,
    name: str,
    definition: dict[str, Any],
    template_key: str | None = None,
) -> Journey:
    """A new journey in draft, version 1 of `definition` (checked first: nothing is written if it is
    wrong)."""
    actor.require(Permission.WRITE)
    checked = definitions.validate(definition)
    _check_content(session, workspace_id=actor.workspace_id, checked=checked)
    now = utcnow()
    journey = Journey(
        workspace_id=actor.workspace_id,
        name=_clean_name(name),
        status=JourneyStatus.DRAFT,
        version=1,
        trigger_kind=checked.trigger["kind"],
        template_key=template_key,
        created_by_user_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(journey)
    session.flush()
    session.add(
        JourneyVersion(
            workspace_id=actor.workspace_id,
            journey_id=journey.id,
            version=1,
            definition=checked.document,
            created_by_user_id=actor.user_id,
            created_at=now,
        )
    )
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="journey.created",
        target_type="journey",
        target_id=journey.id,
        detail={"name": journey.name, "trigger": checked.trigger["kind"], "template": template_key},
    )
    session.flush()
    return journey


@dataclass
class VersionChange:
    """What a new version did to the customers in flight."""

    version: int
    in_flight: str
    stayed: int = 0
    moved: int = 0
    exited: int = 0
    exited_steps: dict[str, int] = field(default_factory=dict)


def update_definition(
    session: Session,
    *,
    actor: Actor,
    journey_id: int,
    definition: dict[str, Any],
    in_flight: InFlight | str,
    name: str | None = None,
) -> VersionChange:
    """Save `definition` as the journey's next version. Customers in flight `stay` on the version they
    entered, `move` to the new version at the step with the same id (those at a step the new version
    lacks exit), or `exit`. New enrolments take the new version."""
    actor.require(Permission.WRITE)
    try:
        choice = InFlight(in_flight)
    except ValueError:
        raise ValidationFailed(
            f"{in_flight!r} is not a choice for customers in flight",
            where="in_flight",
            hint="stay (finish on their version), move (continue at the same step id) or exit",
        ) from None
    checked = definitions.validate(definition)
    _check_content(session, workspace_id=actor.workspace_id, checked=checked)
    journey = _locked(session, workspace_id=actor.workspace_id, journey_id=journey_id)
    if journey.status == JourneyStatus.ARCHIVED:
        raise Conflict("an archived journey is not edited", where="status", hint="copy it into a new journey")
    now = utcnow()
    new_version = journey.version + 1
    session.add(
        JourneyVersion(
            workspace_id=journey.workspace_id,
            journey_id=journey.id,
            version=new_version,
            definition=checked.document,
            in_flight=choice.value,
            created_by_user_id=actor.user_id,
            created_at=now,
        )
    )
    journey.version = new_version
    journey.trigger_kind = checked.trigger["kind"]
    journey.next_run_at = None  # a schedule or date trigger is planned again from the new version
    journey.updated_at = now
    if name is not None:
        journey.name = _clean_name(name)
    change = VersionChange(version=new_version, in_flight=choice.value)
    in_flight_rows = (E.journey_id == journey.id, E.status == EnrolmentStatus.ACTIVE)
    if choice == InFlight.STAY:
        change.stayed = int(session.scalar(select(func.count()).where(*in_flight_rows)) or 0)
    elif choice == InFlight.EXIT:
        change.exited = end_enrolments(session, where=in_flight_rows, reason="version_changed", now=now)
    else:
        kept = list(checked.steps)
        missing = dict(
            session.execute(
                select(E.step_id, func.count())
                .where(*in_flight_rows, E.step_id.not_in(kept))
                .group_by(E.step_id)
            )
            .tuples()
            .all()
        )
        change.exited_steps = {str(k): int(v) for k, v in missing.items()}
        change.exited = end_enrolments(
            session, where=(*in_flight_rows, E.step_id.not_in(kept)), reason="step_removed", now=now
        )
        change.moved = _move(session, rows=in_flight_rows, checked=checked, version=new_version)
    audit.record(
        session,
        workspace_id=journey.workspace_id,
        actor_user_id=actor.user_id,
        action="journey.versioned",
        target_type="journey",
        target_id=journey.id,
        detail={
            "version": new_version,
            "in_flight": choice.value,
            "moved": change.moved,
            "exited": change.exited,
            "stayed": change.stayed,
        },
    )
    return change


def _move(session: Session, *, rows: tuple[Any, ...], checked: Definition, version: int) -> int:
    """Put the stays at each step the new version keeps on that version; a stay waiting at a step
    continues where the new version's step leads."""
    moved = 0
    for step_id, step in checked.steps.items():
        at_step = (*rows, E.step_id == step_id)
        result = session.execute(update(E).where(*at_step, E.waiting.is_(False)).values(version=version))
        moved += int(result.rowcount)  # type: ignore[attr-defined]
        waits_for_event = step["kind"] == "wait_event"
        result = session.execute(
            update(E)
            .where(*at_step, E.waiting.is_(True))
            .values(
                version=version,
                resume_step_id=step.get("timeout_next") if waits_for_event else checked.next_of(step_id),
                event_step_id=checked.next_of(step_id) if waits_for_event else None,
                waiting_event=step["event"] if waits_for_event else None,
            )
        )
        moved += int(result.rowcount)  # type: ignore[attr-defined]
    return moved


def end_enrolments(
    session: Session, *, where: Any, reason: str, now: datetime, status: str = EnrolmentStatus.EXITED
) -> int:
    """End the active enrolments matching `where` (a tuple of conditions) with `reason`."""
    result = session.execute(
        update(E)
        .where(*where)
        .values(
            status=status, ended_at=now, exit_reason=reason, due_at=None, waiting=False, waiting_event=None
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _locked(session: Session, *, workspace_id: int, journey_id: int) -> Journey:
    journey = session.scalar(
        select(Journey)
        .where(Journey.id == journey_id, Journey.workspace_id == workspace_id)
        .with_for_update()
    )
    if journey is None:
        raise NotFound(f"no journey {journey_id} in this workspace", where="journey_id")
    return journey


_MOVES = {
    "start": ({JourneyStatus.DRAFT, JourneyStatus.PAUSED}, JourneyStatus.LIVE),
    "pause": ({JourneyStatus.LIVE}, JourneyStatus.PAUSED),
    "archive": ({JourneyStatus.DRAFT, JourneyStatus.LIVE, JourneyStatus.PAUSED}, JourneyStatus.ARCHIVED),
}


def set_status(session: Session, *, actor: Actor, journey_id: int, action: str) -> Journey:
    """`start` (draft or paused → live), `pause` (live → paused: nothing runs, timers keep their times)
    or `archive` (every customer in flight exits)."""
    actor.require(Permission.WRITE)
    if action not in _MOVES:
        raise ValidationFailed(f"{action!r} is not an action", where="action", hint="start, pause or archive")
    journey = _locked(session, workspace_id=actor.workspace_id, journey_id=journey_id)
    allowed, target = _MOVES[action]
    if journey.status not in allowed:
        raise Conflict(f"a {journey.status} journey cannot {action}", where="status")
    now = utcnow()
    journey.status = target
    journey.updated_at = now
    if target == JourneyStatus.LIVE:
        journey.live_since = now
    exited = 0
    if target == JourneyStatus.ARCHIVED:
        exited = end_enrolments(
            session,
            where=(E.journey_id == journey.id, E.status == EnrolmentStatus.ACTIVE),
            reason="archived",
            now=now,
        )
    audit.record(
        session,
        workspace_id=journey.workspace_id,
        actor_user_id=actor.user_id,
        action=f"journey.{action}",
        target_type="journey",
        target_id=journey.id,
        detail={"exited": exited} if exited else {},
    )
    return journey


@dataclass
class StepFigures:
    step_id: str
    kind: str
    label: str
    at_step: int  # active customers standing at this step now
    passed: int  # runs of this step (every version with this id)
    targets: list[str]


@dataclass
class JourneyFigures:
    journey: Journey
    definition: Definition
    steps: list[StepFigures]
    enrolled: int
    active: int
    goal: int
    completed: int
    exited: int


def step_label(step: dict[str, Any]) -> str:
    """A short description of a step for the flow drawing."""
    kind = step["kind"]
    if kind == "send":
        return "/".join(step["channels"])
    if kind == "wait":
        if step.get("days_from"):
            return "repurchase cycle"
        parts = [f"{step[u]}{u[0]}" for u in ("days", "hours", "minutes") if step.get(u)]
        return " ".join(parts)
    if kind == "wait_until":
        return step["time"]
    if kind == "wait_event":
        return f"{step['event']} ≤ {step['timeout_hours']}h"
    if kind == "condition":
        return str(step["rule"])[:40]
    if kind == "split":
        return f"experiment {step['experiment_id']}"
    if kind == "tag":
        return f"{step.get('action', 'add')} tag {step['tag_id']}"
    if kind == "task":
        return str(step["title"])[:40]
    if kind == "coupon":
        return f"template {step['template_id']}"
    return ""


def journey_figures(session: Session, *, workspace_id: int, journey_id: int) -> JourneyFigures:
    """The journey's current version with, per step, how many customers stand there and how many
    passed; and how many enrolled, are in flight, reached the goal, completed or exited."""
    journey = get_journey(session, workspace_id=workspace_id, journey_id=journey_id)
    checked = definition_of(session, journey_id=journey.id, version=journey.version)
    at_step = dict(
        session.execute(
            select(E.step_id, func.count())
            .where(E.journey_id == journey.id, E.status == EnrolmentStatus.ACTIVE)
            .group_by(E.step_id)
        )
        .tuples()
        .all()
    )
    passed = dict(
        session.execute(
            select(JourneyStepRun.step_id, func.count())
            .where(JourneyStepRun.journey_id == journey.id)
            .group_by(JourneyStepRun.step_id)
        )
        .tuples()
        .all()
    )
    by_status = dict(
        session.execute(select(E.status, func.count()).where(E.journey_id == journey.id).group_by(E.status))
        .tuples()
        .all()
    )
    steps = [
        StepFigures(
            step_id=step_id,
            kind=checked.steps[step_id]["kind"],
            label=step_label(checked.steps[step_id]),
            at_step=int(at_step.get(step_id, 0)),
            passed=int(passed.get(step_id, 0)),
            targets=checked.targets(step_id),
        )
        for step_id in checked.order
    ]
    return JourneyFigures(
        journey=journey,
        definition=checked,
        steps=steps,
        enrolled=int(sum(by_status.values())),
        active=int(by_status.get(EnrolmentStatus.ACTIVE, 0)),
        goal=int(by_status.get(EnrolmentStatus.GOAL, 0)),
        completed=int(by_status.get(EnrolmentStatus.COMPLETED, 0)),
        exited=int(by_status.get(EnrolmentStatus.EXITED, 0)),
    )


def enrolments_of(
    session: Session, *, actor: Actor, journey_id: int, customer_id: int | None = None, limit: int = 100
) -> list[JourneyEnrolment]:
    """The journey's stays, newest first (staff: of their own customers only)."""
    actor.require(Permission.READ)
    get_journey(session, workspace_id=actor.workspace_id, journey_id=journey_id)
    query = select(E).where(E.journey_id == journey_id, E.workspace_id == actor.workspace_id)
    if actor.sees_only_own_customers:
        query = query.where(E.customer_id.in_(customers.visible_customers(actor)))
    if customer_id is not None:
        query = query.where(E.customer_id == customer_id)
    return list(session.scalars(query.order_by(E.id.desc()).limit(limit)))
