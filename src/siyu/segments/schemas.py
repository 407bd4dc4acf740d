"""Pydantic shapes of segments: a rule given in either form, saved segments, counts and explanations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from siyu.customers.schemas import CustomerSummary


class RuleIn(BaseModel):
    """A rule in its text form or as canonical JSON (one of the two)."""

    text: str | None = Field(None, description='e.g. tag("VIP") and orders(within="30d").count >= 2')
    rule: dict[str, Any] | None = Field(None, description="The canonical JSON tree.")
    now: datetime | None = Field(None, description="Evaluate as of this instant (default: now).")

    @model_validator(mode="after")
    def _one_form(self) -> RuleIn:
        if (self.text is None) == (self.rule is None):
            raise ValueError("give the rule either as text or as rule (JSON), not both")
        return self

    @property
    def source(self) -> str | dict[str, Any]:
        return self.text if self.text is not None else self.rule or {}


class SegmentIn(RuleIn):
    name: str = Field(description="Unique in the workspace, also among deleted segments.")
    accept_warnings: bool = Field(False, description="Save even a rule that matches everyone or no one.")


class SegmentUpdate(BaseModel):
    name: str | None = None
    text: str | None = None
    rule: dict[str, Any] | None = None
    accept_warnings: bool = False


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    rule: dict[str, Any]
    rule_text: str
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int = Field(description="Counts the rule's changes; segment events carry it.")
    tag_id: int | None = Field(description="The rule tag its members carry, if any.")


class TagMembersIn(BaseModel):
    tag_id: int


class RuleCount(BaseModel):
    count: int
    text: str = Field(description="The rule in its text form.")
    warnings: list[str] = Field(default_factory=list)
    now: datetime


class RuleSample(RuleCount):
    members: list[CustomerSummary]


class RuleExplain(BaseModel):
    text: str
    rule: dict[str, Any]
    dialect: str
    sql: str = Field(description="The statement as the database runs it, with its parameters inlined.")
    warnings: list[str] = Field(default_factory=list)
    now: datetime


class RuleTagIn(BaseModel):
    tag_id: int | None = Field(description="The tag members carry (source rule); null: no rule tag.")


class ScheduledRun(BaseModel):
    """One of the worker's scheduled jobs for the segments of a workspace."""

    job: str = Field(description="process, sweep or reconcile")
    schedule: str
    last_started_at: datetime | None
    last_status: str | None = Field(description="ok or error; null: never run")
    last_result: str | None
    last_error: str | None
    next_run_at: datetime | None


class Processing(BaseModel):
    """Whether the worker keeps the workspace's segments current: its segment jobs and whether the
    event processing ran recently (`current`)."""

    current: bool = Field(description="Event processing ran within the last minute without an error.")
    runs: list[ScheduledRun]


class SegmentStatus(BaseModel):
    """A saved segment's live membership: size, how far behind it is, and what reconciliation found."""

    id: int
    name: str
    rule_text: str
    version: int
    tag_id: int | None
    members: int
    time_dependent: bool = Field(description="Changes with time alone; the sweep evaluates it in full.")
    lag_seconds: float = Field(description="How far behind the membership may be (events, sweep).")
    pending_events: int = Field(description="Domain events of the workspace not yet handled.")
    evaluated_at: datetime | None = Field(description="Last full evaluation (backfill, sweep, repair).")
    swept_at: datetime | None
    reconciled_at: datetime | None
    drift_missing: int | None = Field(description="Last reconciliation: matched but not members.")
    drift_extra: int | None = Field(description="Last reconciliation: members that did not match.")
    evaluation_error: str | None = Field(description="Why the rule stopped evaluating, if it did.")
    state: str = Field(description="current, lagging, drift or error")


class RunResult(BaseModel):
    """What a processing, sweep or backfill run changed."""

    events: int = Field(description="Domain events handled.")
    last_event_id: int
    remaining: int = Field(description="Events still waiting after this run.")
    full: bool = Field(description="The backlog was caught up by full evaluations.")
    segments: int = Field(description="Segments evaluated.")
    entered: int
    left: int
    errors: dict[int, str] = Field(default_factory=dict, description="Segment id → why it did not evaluate.")


class ReconcileIn(BaseModel):
    repair: bool = False


class SegmentDrift(BaseModel):
    segment_id: int
    name: str
    missing: int
    extra: int
    repaired: bool
    error: str | None = None


class CountPoint(BaseModel):
    at: datetime
    members: int


class MembersPage(BaseModel):
    members: list[CustomerSummary]
    next_cursor: str | None
