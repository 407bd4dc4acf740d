"""RFM's share of the worker's schedule (reach.tasks.SCHEDULE): the daily run, called by `core.schedule`."""

from __future__ import annotations

from datetime import datetime

from siyu.auth import service as auth
from siyu.core.db import Database
from siyu.rfm import service


def compute(database: Database, *, workspace_id: int, now: datetime) -> str:
    """Score the workspace's buyers of the last year (the defaults of `siyu rfm`)."""
    actor = auth.system_actor(workspace_id=workspace_id, display_name="scheduler")
    with database.transaction() as session:
        run = service.compute_rfm(session, actor=actor, now=now)
    return f"scored {run.scored}"
