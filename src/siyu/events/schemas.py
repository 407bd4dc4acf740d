"""Pydantic shapes of customer events, returned by the events service and the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int | None
    type: str
    occurred_at: datetime
    properties: dict[str, Any]
    source: str


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = None
