"""Experiments in and out of the JSON API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ExperimentIn(BaseModel):
    key: str = Field(description="A short code that seeds assignment; it never changes.")
    name: str = ""
    variants: dict[str, float] = Field(
        description="Variant name → relative weight; the first is the control."
    )
    holdout_share: float = Field(0.0, description="Share of customers reached by no variant.")
    goal_event: str | None = Field(None, description="An event type as the goal; none: a purchase.")
    goal_window_days: int = 14


class VariantOut(BaseModel):
    name: str
    weight: float


class ExperimentOut(BaseModel):
    id: int
    key: str
    name: str
    status: str
    holdout_share: float
    goal_event: str | None
    goal_window_days: int
    variants: list[VariantOut]
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class AssignIn(BaseModel):
    customer_id: int


class AssignOut(BaseModel):
    customer_id: int
    variant: str | None = Field(description="The arm; null when the customer is in the holdout.")
