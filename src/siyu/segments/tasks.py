"""The segments' share of the worker's schedule (reach.tasks.SCHEDULE): live membership kept current
from the outbox, the time sweep and the daily reconciliation, each called by `core.schedule`."""

from __future__ import annotations

import logging
from datetime import datetime

from siyu.core.db import Database
from siyu.segments import service

log = logging.getLogger("siyu.segments.tasks")
MAX_ROUNDS = 20  # a larger backlog goes on at the next run; a bulk backlog is caught up in one round


def process_events(database: Database, *, workspace_id: int, now: datetime) -> str:
    """Handle the workspace's pending domain events, a transaction per batch; cheap when none are new
    (one locked cursor row and one indexed read)."""
    events = entered = left = 0
    for _ in range(MAX_ROUNDS):
        with database.transaction() as session:
            run = service.process_pending(session, workspace_id=workspace_id, now=now)
        events, entered, left = events + run.events, entered + run.entered, left + run.left
        if not run.remaining:
            break
    return f"events {events}, entered {entered}, left {left}"


def sweep(database: Database, *, workspace_id: int, now: datetime) -> str:
    """Evaluate the time-dependent segments in full."""
    with database.transaction() as session:
        run = service.sweep(session, workspace_id=workspace_id, now=now)
    return f"segments {run.segments}, entered {run.entered}, left {run.left}"


def reconcile(database: Database, *, workspace_id: int, now: datetime) -> str:
    """Compare every segment with a full evaluation and repair the drift (logged: drift is a bug)."""
    with database.transaction() as session:
        drifts = service.reconcile(session, workspace_id=workspace_id, repair=True, now=now)
    drifted = [d for d in drifts if d.missing or d.extra]
    for d in drifted:
        log.warning(
            "segment %s (%s) of workspace %s drifted: %s missing, %s extra; repaired",
            d.segment_id,
            d.name,
            workspace_id,
            d.missing,
            d.extra,
        )
    return f"segments {len(drifts)}, drifted {len(drifted)}"
