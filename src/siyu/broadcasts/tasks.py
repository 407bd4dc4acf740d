"""The broadcasts' share of the worker loop: start scheduled broadcasts when due, let the gateway
decide the audiences of sending ones in chunks (one transaction each), and mark them sent when done.

`siyu worker` and the worker inside `siyu serve` call `run_due` on every poll (reach.tasks.PERIODIC).
"""

from __future__ import annotations

import logging
from datetime import datetime

from siyu.broadcasts import service
from siyu.core.db import Database
from siyu.core.timeutil import utcnow

log = logging.getLogger("siyu.broadcasts.worker")


def run_due(database: Database, *, now: datetime | None = None, max_chunks: int = 5) -> int:
    """One round: returns how many customers were decided. Each broadcast gets at most `max_chunks`
    chunks per round, so the worker's sends go on between the chunks of a large audience."""
    with database.transaction() as session:
        service.reapply_stops(session, now=now)
        started = service.start_due(session, now=now)
    for broadcast_id in started:
        log.info("broadcast %s started on schedule", broadcast_id)
    with database.reader() as session:
        sending = service.sending_ids(session)
    decided = 0
    for workspace_id, broadcast_id in sending:
        for _ in range(max_chunks):
            with database.transaction() as session:
                n = service.decide_next(
                    session, workspace_id=workspace_id, broadcast_id=broadcast_id, now=now or utcnow()
                )
            decided += n
            if n < service.CHUNK:
                break
        with database.transaction() as session:
            service.finish_if_done(session, workspace_id=workspace_id, broadcast_id=broadcast_id, now=now)
    return decided


def run_until_decided(database: Database, *, now: datetime | None = None) -> int:
    """Decide every sending broadcast's whole audience (the CLI's `start --wait`, tests and the bench)."""
    total = 0
    while True:
        decided = run_due(database, now=now, max_chunks=1000)
        total += decided
        if not decided:
            return total
