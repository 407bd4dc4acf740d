"""Lifecycle's share of the worker's schedule (reach.tasks.SCHEDULE): the daily sweep of every customer
into their stage, called by `core.schedule`."""

from __future__ import annotations

from datetime import datetime

from siyu.auth import service as auth
from siyu.core.db import Database
from siyu.lifecycle import service


def sweep(database: Database, *, workspace_id: int, now: datetime) -> str:
    actor = auth.system_actor(workspace_id=workspace_id, display_name="scheduler")
    with database.transaction() as session:
        result = service.sweep(session, actor=actor, now=now)
    return f"customers {result.customers}, transitions {result.transitions}"
