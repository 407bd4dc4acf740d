"""Background work of the WeCom integration: submit scheduled moments when due, and follow mass
messages and moments as staff confirm them. Each item runs in a transaction of its own, so one
refusal by WeCom does not hold back the others."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from siyu.core.db import Database
from siyu.core.errors import SiyuError
from siyu.core.timeutil import utcnow
from siyu.wecom import service as wecom

log = logging.getLogger(__name__)
FOLLOW_FOR = timedelta(days=3)  # staff confirm a mass message or moment within days, if ever


@dataclass
class Round:
    """What one round did, and what WeCom refused (item, reason)."""

    follows_relinked: int = 0
    moments_submitted: int = 0
    messages_polled: int = 0
    moments_polled: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def run_round(db: Database, *, workspace_id: int, now: datetime | None = None) -> Round:
    """One round for a workspace: friend relations relinked after merges, due moments submitted, open
    mass messages and moments polled."""
    current = now or utcnow()
    result = Round()
    with db.transaction() as session:
        result.follows_relinked = wecom.relink_follows(session, workspace_id=workspace_id)
    try:
        with db.transaction() as session:
            result.moments_submitted = len(
                wecom.publish_due_moments(session, workspace_id=workspace_id, now=current)
            )
    except SiyuError as exc:
        result.failures.append(("scheduled moments", str(exc)))
    with db.reader() as session:
        messages, moments = wecom.open_tasks(session, workspace_id=workspace_id, since=current - FOLLOW_FOR)
    for message_id in messages:
        try:
            with db.transaction() as session:
                wecom.poll_mass_message_results(session, workspace_id=workspace_id, message_id=message_id)
            result.messages_polled += 1
        except SiyuError as exc:
            log.warning("polling mass message %s failed: %s", message_id, exc)
            result.failures.append((f"mass message {message_id}", str(exc)))
    for moment_id in moments:
        try:
            with db.transaction() as session:
                wecom.poll_moment_result(session, workspace_id=workspace_id, moment_id=moment_id)
            result.moments_polled += 1
        except SiyuError as exc:
            log.warning("polling moment %s failed: %s", moment_id, exc)
            result.failures.append((f"moment {moment_id}", str(exc)))
    return result
