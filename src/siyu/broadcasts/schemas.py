"""Broadcasts in and out of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class VariantIn(BaseModel):
    weight: float = Field(1.0, gt=0, description="relative share of the audience (after the holdout)")
    content: dict[str, Any] = Field(description="content per channel, as the gateway takes it")


class BroadcastIn(BaseModel):
    name: str
    purpose: str = Field("marketing", description="marketing or transactional")
    channel_preference: list[str] = Field(
        description='channels in order of preference, e.g. ["wecom", "sms"]'
    )
    content: dict[str, Any] = Field(description='content per channel, e.g. {"sms": {"text": "…"}}')
    segment_id: int | None = Field(None, description="the audience: this segment's members when it starts")
    customer_ids: list[int] | None = Field(None, description="or: an explicit list of customers")
    identity_kind: str | None = Field(None, description="or: identity values of this kind (e.g. phone)")
    identity_values: list[str] | None = None
    variants: dict[str, VariantIn] | None = Field(None, description="A/B variants: name → weight and content")
    holdout_share: float = Field(0.0, ge=0, lt=1, description="share of the audience that gets no message")
    send_at: datetime | None = Field(None, description="scheduled start (with a time zone); none: on start")
    conversion_window_days: int = Field(7, ge=1, le=90)
    coupon_template_id: int | None = Field(
        None,
        description="issue each messaged customer a coupon of this template (coupon_code in the content)",
    )
    start: bool = Field(False, description="start at once (or schedule, with send_at)")


class BroadcastOut(BaseModel):
    id: int
    name: str
    status: str
    purpose: str
    segment_id: int | None
    listed_customers: int
    channel_preference: list[str]
    content: dict[str, Any]
    variants: dict[str, Any]
    holdout_share: float
    experiment_id: int | None
    send_at: datetime | None
    audience_size: int
    decided_count: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ProgressOut(BaseModel):
    broadcast_id: int
    status: str
    audience: int
    counts: dict[str, int] = Field(description="every customer of the audience in exactly one count")
    by_reason: dict[str, int]
    by_variant: dict[str, int]


class GroupOut(BaseModel):
    group: str
    customers: int
    delivered: int
    converted: int
    conversion_rate: float | None
    revenue_cents: int


class ResultsOut(BaseModel):
    broadcast_id: int
    started_at: datetime | None
    window_days: int
    groups: list[GroupOut]
    clicked: int | None
    clicks_note: str
    experiment: dict[str, Any] | None
