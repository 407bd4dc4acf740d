"""Background work of the WeCom integration: submit scheduled moments when due, and follow mass
messages and moments as staff confirm them. Each item runs in a transaction of its own, so one
refusal by WeCom does not hold back the others. `follow_up` and `send_welcomes` run on every poll of
the reach worker (reach.tasks.PERIODIC)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from siyu.core.db import Database
from siyu.core.errors import Conflict, NotFound, SiyuError
from siyu.core.timeutil import utcnow
from siyu.livecodes import attribution as live_codes
from siyu.wecom import service as wecom
from siyu.wecom.client import WecomApiError

log = logging.getLogger(__name__)
FOLLOW_FOR = timedelta(days=3)
# send_welcome_msg errors that a retry cannot mend: invalid or used welcome code, not a friend
WELCOME_REFUSALS = frozenset({41051, 84061})  # staff confirm a mass message or moment within days, if ever


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


def follow_up(database: Database, *, workspace_id: int | None = None, now: datetime | None = None) -> Round:
    """The worker's share of WeCom, for every workspace with WeCom settings (or one): due moments
    submitted, running moment jobs polled every 30 seconds and moments' staff and mass messages'
    results every 5 minutes, while staff may still act on them (3 days)."""
    current = now or utcnow()
    total = Round()
    with database.reader() as session:
        workspaces = [workspace_id] if workspace_id is not None else wecom.configured_workspaces(session)
    for ws in workspaces:
        try:
            with database.transaction() as session:
                total.moments_submitted += len(
                    wecom.publish_due_moments(session, workspace_id=ws, now=current)
                )
        except SiyuError as exc:
            log.warning("scheduled moments of workspace %s not submitted: %s", ws, exc)
            total.failures.append((f"scheduled moments of workspace {ws}", str(exc)))
        with database.reader() as session:
            moments = wecom.moments_to_poll(session, workspace_id=ws, now=current)
            messages = wecom.mass_messages_to_poll(session, workspace_id=ws, now=current)
        for moment_id in moments:
            try:
                with database.transaction() as session:
                    wecom.poll_moment_result(session, workspace_id=ws, moment_id=moment_id, now=current)
                total.moments_polled += 1
            except SiyuError as exc:
                log.warning("polling moment %s failed: %s", moment_id, exc)
                total.failures.append((f"moment {moment_id}", str(exc)))
                with database.transaction() as session:  # not again on every poll of the worker
                    wecom.mark_moment_polled(session, workspace_id=ws, moment_id=moment_id, now=current)
        for message_id in messages:
            try:
                with database.transaction() as session:
                    wecom.poll_mass_message_results(
                        session, workspace_id=ws, message_id=message_id, now=current
                    )
                total.messages_polled += 1
            except SiyuError as exc:
                log.warning("polling mass message %s failed: %s", message_id, exc)
                total.failures.append((f"mass message {message_id}", str(exc)))
                with database.transaction() as session:  # not again on every poll of the worker
                    wecom.mark_mass_message_polled(
                        session, workspace_id=ws, message_id=message_id, now=current
                    )
    return total


def send_welcomes(database: Database, *, now: datetime | None = None) -> int:
    """Send the live codes' welcome messages (欢迎语) of friends just added, through send_welcome_msg
    with the welcome code of their callback, inside WeCom's 20-second window; each in a transaction of
    its own. A refusal that cannot change (no welcome code, the window passed) fails the message at
    once; a transient one (WeCom or the network) is tried again on the next poll while the window lasts.
    Returns how many were sent. `siyu worker` and `siyu serve` call it on every poll."""
    current = now or utcnow()
    since = current - wecom.WELCOME_WINDOW
    with database.transaction() as session:
        live_codes.expire_welcomes(session, before=since)
    with database.reader() as session:
        pending = live_codes.pending_welcomes(session, since=since)
    sent = 0
    for item in pending:
        try:
            with database.transaction() as session:
                wecom.send_welcome(
                    session,
                    workspace_id=item.workspace_id,
                    wecom_userid=item.staff_wecom_userid,
                    external_userid=item.external_userid,
                    text=item.text,
                    now=current,
                )
                live_codes.settle_welcome(
                    session, workspace_id=item.workspace_id, add_id=item.add_id, sent=True
                )
            sent += 1
        except (Conflict, NotFound, WecomApiError) as exc:
            if isinstance(exc, WecomApiError) and exc.errcode not in WELCOME_REFUSALS:
                # WeCom's passing error or the network: the next poll tries again within the window
                log.warning("welcome message of live-code add %s not sent yet: %s", item.add_id, exc)
                continue
            with database.transaction() as session:  # no welcome code, the window passed, no friend
                live_codes.settle_welcome(
                    session, workspace_id=item.workspace_id, add_id=item.add_id, sent=False, reason=str(exc)
                )
        except SiyuError as exc:
            log.warning("welcome message of live-code add %s not sent yet: %s", item.add_id, exc)
    return sent
