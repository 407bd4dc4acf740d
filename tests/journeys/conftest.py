"""Helpers of the journey tests: a journey made and started through the service, events in the
outbox as their domains record them, and an engine pass (events, schedules, due steps) at a given time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from siyu.auth.service import Actor
from siyu.core import domain_events
from siyu.core.db import Database
from siyu.journeys import service
from siyu.journeys.models import JourneyEnrolment, JourneyStepRun
from tests.reach.conftest import NOON
from tests.web.conftest import data_dir, live_server  # noqa: F401  (the browser test's fixtures)
from tests.web.test_browser import browser, page  # noqa: F401

T0 = NOON  # 12:00 in Asia/Shanghai, outside quiet hours
TEXT: dict[str, Any] = {"sms": {"text": "你好"}, "wecom": {"text": "你好"}}


def send(step_id: str, text: str = "你好", **extra: Any) -> dict[str, Any]:
    content = {"sms": {"text": f"{text} {step_id}"}, "wecom": {"text": f"{text} {step_id}"}}
    return {"id": step_id, "kind": "send", "channels": ["sms"], "content": content, **extra}


def event_trigger(type_: str = "order.placed", **extra: Any) -> dict[str, Any]:
    return {"kind": "event", "type": type_, **extra}


def make_journey(db: Database, actor: Actor, definition: dict[str, Any], *, start: bool = True) -> int:
    with db.transaction() as session:
        journey = service.create_journey(session, actor=actor, name="SOP", definition=definition)
        if start:
            service.set_status(session, actor=actor, journey_id=journey.id, action="start")
        return journey.id


def emit(db: Database, workspace_id: int, type_: str, customer_id: int, **payload: Any) -> None:
    with db.transaction() as session:
        domain_events.record(
            session, workspace_id=workspace_id, type=type_, customer_id=customer_id, payload=payload
        )


def tick(db: Database, workspace_id: int, now: datetime) -> service.EngineRun:
    """One engine pass: the outbox, the schedules, then due steps until none are left."""
    total = service.EngineRun()
    with db.transaction() as session:
        ran = service.consume_events(session, workspace_id=workspace_id, now=now)
        total.enrolled, total.goals, total.resumed = ran.enrolled, ran.goals, ran.resumed
    with db.transaction() as session:
        total.enrolled += service.run_schedules(session, workspace_id=workspace_id, now=now).enrolled
    while True:
        with db.transaction() as session:
            ran = service.process_due(session, workspace_id=workspace_id, now=now)
        total.steps += ran.steps
        total.claimed += ran.claimed
        if not ran.claimed:
            return total


def next_due(db: Database, workspace_id: int) -> datetime | None:
    """When the workspace's next timer runs out (None: no stay is waiting on one)."""
    with db.reader() as session:
        return session.scalar(
            select(func.min(JourneyEnrolment.due_at)).where(
                JourneyEnrolment.workspace_id == workspace_id, JourneyEnrolment.status == "active"
            )
        )


def stays(db: Database, journey_id: int) -> list[JourneyEnrolment]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(JourneyEnrolment)
                .where(JourneyEnrolment.journey_id == journey_id)
                .order_by(JourneyEnrolment.id)
            )
        )


def runs(db: Database, journey_id: int) -> list[tuple[int, str, int, str]]:
    with db.reader() as session:
        return [
            (r.enrolment_id, r.step_id, r.version, r.outcome)
            for r in session.scalars(
                select(JourneyStepRun)
                .where(JourneyStepRun.journey_id == journey_id)
                .order_by(JourneyStepRun.id)
            )
        ]


def at(hours: float = 0, days: float = 0) -> datetime:
    from datetime import timedelta

    return T0 + timedelta(days=days, hours=hours)


__all__ = ["T0", "UTC"]
