"""CLV's share of the worker's schedule (reach.tasks.SCHEDULE): the daily scoring, called by
`core.schedule`."""

from __future__ import annotations

from datetime import datetime

from siyu.auth import service as auth
from siyu.clv import service
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed


def score(database: Database, *, workspace_id: int, now: datetime) -> str:
    """Fit and score the workspace's buyers (the defaults of `siyu clv score`); a workspace with too
    few buyers to fit is skipped, not failed."""
    actor = auth.system_actor(workspace_id=workspace_id, display_name="scheduler")
    try:
        with database.transaction() as session:
            run = service.score_workspace(session, actor=actor, as_of=now)
    except ValidationFailed as exc:
        if "too few to fit" not in exc.message:
            raise
        return f"skipped: {exc}"
    return f"scored {run.scored}"
