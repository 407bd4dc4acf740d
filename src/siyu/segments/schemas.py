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
