"""Tables of journeys: the journey and its versioned definitions, one enrolment per customer stay with
its current step and timer, the execution log (each step once per enrolment and version), staff tasks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, BigId, JsonDoc, UTCDateTime
from siyu.core.timeutil import utcnow


class JourneyStatus(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    PAUSED = "paused"  # no new enrolments, no steps run; timers keep their due times
    ARCHIVED = "archived"  # ended: every enrolment in flight exited


class EnrolmentStatus(StrEnum):
    ACTIVE = "active"  # at `step_id`, due at `due_at` (a wait's timer), or waiting for an event
    COMPLETED = "completed"  # ran off the end of its steps or reached an exit step
    GOAL = "goal"  # reached the journey's goal
    EXITED = "exited"  # taken out: journey archived, version change, customer gone, a step refused


class InFlight(StrEnum):
    """What a new version does with customers in the journey when it is created."""

    STAY = "stay"  # they finish on the version they entered
    MOVE = "move"  # they continue on the new version at the step with the same id (exit if none)
    EXIT = "exit"  # they leave the journey


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Journey(Base):
    __tablename__ = "journey"
    __table_args__ = (Index("ix_journey_ws_status", "workspace_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=JourneyStatus.DRAFT)
    version: Mapped[int] = mapped_column(Integer, default=1)  # the current version
    trigger_kind: Mapped[str] = mapped_column(String(32))  # of the current version, for the engine
    template_key: Mapped[str | None] = mapped_column(String(64))
    # date and schedule triggers: when the engine next looks for customers to enrol
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # when it last went live: events recorded before it do not enrol anyone
    live_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JourneyVersion(Base):
    __tablename__ = "journey_version"
    __table_args__ = (UniqueConstraint("journey_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    journey_id: Mapped[int] = mapped_column(ForeignKey("journey.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    in_flight: Mapped[str | None] = mapped_column(String(8))  # the choice made when it replaced the last
    created_by_user_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JourneyEnrolment(Base):
    """One stay of one customer in a journey: where they are and when the engine should look again."""

    __tablename__ = "journey_enrolment"
    __table_args__ = (
        UniqueConstraint("journey_id", "customer_id", "number"),
        # the engine's claim reads due stays in (due_at, id) order straight off this index, LIMIT a batch
        Index("ix_journey_enrolment_due", "status", "due_at", "id"),
        Index("ix_journey_enrolment_customer", "workspace_id", "customer_id", "status"),
        Index("ix_journey_enrolment_journey_step", "journey_id", "status", "step_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    journey_id: Mapped[int] = mapped_column(ForeignKey("journey.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    number: Mapped[int] = mapped_column(Integer, default=1)  # the customer's nth stay in this journey
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=EnrolmentStatus.ACTIVE)
    # where the customer stands: the next step to run, or (`waiting`) a wait step that has run
    step_id: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the engine looks again
    waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    resume_step_id: Mapped[str | None] = mapped_column(String(64))  # where the timer leads (None: the end)
    # a wait-for-event step: the event type seen after `waiting_since` leads to `event_step_id`
    waiting_event: Mapped[str | None] = mapped_column(String(64))
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_step_id: Mapped[str | None] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    trigger_ref: Mapped[str | None] = mapped_column(String(64))  # what enrolled them (event id, run)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(32))


class JourneyStepRun(Base):
    """The execution log: a step runs at most once per enrolment and version (the unique key)."""

    __tablename__ = "journey_step_run"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "step_id", "version"),
        Index("ix_journey_step_run_journey", "journey_id", "step_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(BigId)
    journey_id: Mapped[int] = mapped_column(BigId)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("journey_enrolment.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(200))
    executed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffTask(Base):
    """A 1v1 follow-up for a staff member (the customer's owner), created by a journey step or by hand."""

    __tablename__ = "staff_task"
    __table_args__ = (
        Index("ix_staff_task_assignee", "workspace_id", "assignee_user_id", "status", "due_at"),
        UniqueConstraint("enrolment_id", "step_id", "version"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    assignee_user_id: Mapped[int | None] = mapped_column(BigId)  # None: no owner, for an admin to assign
    journey_id: Mapped[int | None] = mapped_column(BigId)
    enrolment_id: Mapped[int | None] = mapped_column(BigId)
    step_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(8), default=TaskStatus.OPEN)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_user_id: Mapped[int | None] = mapped_column(BigId)
    outcome: Mapped[str] = mapped_column(Text, default="")
