"""Membership's share of the worker's schedule (reach.tasks.SCHEDULE): points kept current from the
outbox (orders earn, refunds take back, merges move balances), called by `core.schedule`."""

from __future__ import annotations

from datetime import datetime

from siyu.core import schedule
from siyu.core.db import Database
from siyu.membership import service

BATCH = 2000
MAX_ROUNDS = 20  # a larger backlog goes on at the next run


def process_order_events(database: Database, *, workspace_id: int, now: datetime) -> str:
    """Handle the workspace's pending order and merge events, a transaction per batch; cheap when none
    are new (one locked cursor row and two indexed reads)."""
    events = schedule.drain(
        database,
        lambda session, batch: service.process_order_events(session, workspace_id=workspace_id, batch=batch),
        batch=BATCH,
        max_rounds=MAX_ROUNDS,
    )
    return f"events {events}"


def expire_points(database: Database, *, workspace_id: int, now: datetime) -> str:
    """The daily expiry sweep (`siyu membership expire`): points past their expiry leave the balances."""
    with database.transaction() as session:
        points = service.expire_points(session, workspace_id=workspace_id, at=now)
    return f"points expired {points}"


def evaluate_tiers(database: Database, *, workspace_id: int, now: datetime) -> str:
    """The daily tier review (`siyu membership tiers`): rolling spend or points that aged out downgrade,
    with the history and benefits of each change."""
    with database.transaction() as session:
        changed = service.evaluate_tiers(session, workspace_id=workspace_id, at=now)
    return f"tiers changed {changed}"
