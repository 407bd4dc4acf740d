"""The communities' share of the worker loop: open the group posts' (群SOP) occurrences that are due
and send each owner's share, one transaction per owner. `siyu worker` and the worker inside
`siyu serve` call `run_group_posts` on every poll (reach.tasks.PERIODIC)."""

from __future__ import annotations

import logging
from datetime import datetime

from siyu.communities import posts
from siyu.core.db import Database
from siyu.core.errors import SiyuError
from siyu.core.timeutil import utcnow

log = logging.getLogger("siyu.communities.worker")


def run_group_posts(
    database: Database, *, workspace_id: int | None = None, now: datetime | None = None
) -> int:
    """One round: returns how many owners' sends were made (refusals included). An owner whose send
    failed for want of an answer is tried again on the next round."""
    current = now or utcnow()
    with database.transaction() as session:
        for occurrence_id in posts.open_due(session, workspace_id=workspace_id, now=current):
            log.info("group post occurrence %s opened", occurrence_id)
    with database.reader() as session:
        pending = posts.sending(session, workspace_id=workspace_id)
    sent = 0
    for ws, occurrence_id, owners in pending:
        for owner in owners:
            try:
                with database.transaction() as session:
                    if posts.send_owner(
                        session, workspace_id=ws, occurrence_id=occurrence_id, owner=owner, now=current
                    ):
                        sent += 1
            except SiyuError as exc:
                log.warning("group post occurrence %s for %s not sent yet: %s", occurrence_id, owner, exc)
    return sent
