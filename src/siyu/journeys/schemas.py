"""Pydantic in/out of journeys and staff tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JourneyIn(BaseModel):
    name: str = Field(max_length=200, description="e.g. 新客欢迎 SOP")
    definition: dict[str, Any] | None = Field(
        None, description="Trigger, re-entry, goal and steps (docs/journeys.md); or give `template`."
    )
    template: str | None = Field(
        None, description="A shipped SOP: welcome, post_purchase, dormant, birthday."
    )
    live_code_id: int | None = Field(
        None, description="welcome: only customers added through this live code."
    )
    coupon_template_id: int | None = Field(
        None, description="dormant, birthday: a coupon step of this template."
    )


class DefinitionIn(BaseModel):
    definition: dict[str, Any]
    in_flight: str = Field(description="Customers in the journey: stay, move (same step id) or exit.")
    name: str | None = Field(None, max_length=200)


class JourneyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: str
    version: int
    trigger_kind: str
    template_key: str | None
    live_since: datetime | None
    next_run_at: datetime | None
    created_at: datetime


class StepOut(BaseModel):
    step_id: str
    kind: str
    label: str
    at_step: int
    passed: int
    targets: list[str]


class JourneyDetail(JourneyOut):
    definition: dict[str, Any]
    steps: list[StepOut]
    enrolled: int
    active: int
    goal: int
    completed: int
    exited: int


class VersionChangeOut(BaseModel):
    version: int
    in_flight: str
    stayed: int
    moved: int
    exited: int
    exited_steps: dict[str, int]


class EnrolmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    number: int
    version: int
    status: str
    step_id: str | None
    waiting: bool
    waiting_event: str | None
    due_at: datetime | None
    entered_at: datetime
    ended_at: datetime | None
    exit_reason: str | None


class TemplateOut(BaseModel):
    key: str
    name_zh: str
    name_en: str
    definition: dict[str, Any]


class TaskIn(BaseModel):
    customer_id: int
    title: str = Field(max_length=200)
    due_at: datetime
    note: str = Field("", max_length=2000)


class TaskDone(BaseModel):
    outcome: str = Field("", max_length=2000)


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    assignee_user_id: int | None
    journey_id: int | None
    step_id: str | None
    title: str
    note: str
    status: str
    due_at: datetime
    created_at: datetime
    completed_at: datetime | None
    outcome: str


class StaffFiguresOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: int | None
    display_name: str
    total: int
    done: int
    open: int
    overdue: int
    done_on_time: int
    completion_rate: float
    mean_response_hours: float | None
