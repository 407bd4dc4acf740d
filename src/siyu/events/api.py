"""JSON routes for customer events: cursor-paged lists and one event."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from siyu.auth.service import Actor, Permission
from siyu.events import service
from siyu.events.schemas import EventOut, EventPage
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api", tags=["events"])


@router.get("/events", response_model=EventPage)
def list_events(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    customer_id: int | None = None,
    type: str | None = None,
    start: Annotated[datetime | None, Query(description="Occurred at or after (UTC).")] = None,
    end: Annotated[datetime | None, Query(description="Occurred before (UTC).")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EventPage:
    return service.list_events(
        session,
        actor=actor,
        customer_id=customer_id,
        type=type,
        start=start,
        end=end,
        cursor=cursor,
        limit=limit,
    )


@router.get("/events/{event_id}", response_model=EventOut)
def get_event(event_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> EventOut:
    return service.get_event(session, actor=actor, event_id=event_id)
