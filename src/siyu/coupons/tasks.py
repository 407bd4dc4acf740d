"""Coupons' share of the worker's schedule (reach.tasks.SCHEDULE): a refunded order's redemptions are
reversed and a merged record's coupons move to the survivor, from the outbox, called by `core.schedule`."""

from __future__ import annotations

from datetime import datetime

from siyu.core import schedule
from siyu.core.db import Database
from siyu.coupons import service

BATCH = 5000
MAX_ROUNDS = 20  # a larger backlog goes on at the next run


def apply_order_events(database: Database, *, workspace_id: int, now: datetime) -> str:
    """Handle the workspace's pending refund and merge events, a transaction per batch; cheap when none
    are new (one locked cursor row and two indexed reads)."""
    events = schedule.drain(
        database,
        lambda session, batch: service.apply_order_events(session, workspace_id=workspace_id, batch=batch),
        batch=BATCH,
        max_rounds=MAX_ROUNDS,
    )
    return f"events {events}"
