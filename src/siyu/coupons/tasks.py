"""Coupons' share of the worker's schedule (reach.tasks.SCHEDULE): a refunded order's redemptions are
reversed and a merged record's coupons move to the survivor, from the outbox, called by `core.schedule`."""

from __future__ import annotations

from datetime import datetime

from siyu.core.db import Database
from siyu.coupons import service

BATCH = 5000
MAX_ROUNDS = 20  # a larger backlog goes on at the next run


def apply_order_events(database: Database, *, workspace_id: int, now: datetime) -> str:
    """Handle the workspace's pending refund and merge events, a transaction per batch; cheap when none
    are new (one locked cursor row and two indexed reads)."""
    events = 0
    for _ in range(MAX_ROUNDS):
        with database.transaction() as session:
            read = service.apply_order_events(session, workspace_id=workspace_id, batch=BATCH)
        events += read
        if read < BATCH:
            break
    return f"events {events}"
