"""Background work of the WeCom integration: submit scheduled moments when due, follow mass messages
and moments as staff confirm them, hand live codes' welcome messages to the send gateway (settling each
add from its message's outcome) and push their contact ways (on every poll of the reach worker,
reach.tasks.PERIODIC), and fetch the groups' daily figures (群聊数据统计, a daily job of
reach.tasks.SCHEDULE). Each item runs in a transaction of its own, so one refusal by WeCom does not hold
back the others."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from siyu.core.db import Database
from siyu.core.errors import SiyuError
from siyu.core.timeutil import utcnow
from siyu.livecodes import attribution as live_codes
from siyu.livecodes import sync as live_code_sync
from siyu.reach import service as reach
from siyu.wecom import service as wecom
from siyu.wecom.client import WecomApiError, WecomClient
from siyu.wecom.service.live_code_ways import ADD_PATH

log = logging.getLogger(__name__)
FOLLOW_FOR = timedelta(days=3)  # staff confirm a mass message or moment within days, if ever
# an add older than this that was never handed to the gateway is settled failed without a message (a
# younger one past the 20 s still goes, and fails there with the reason: the gateway accounts for it)
STALE_WELCOME = timedelta(minutes=10)


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


@dataclass
class Welcomes:
    """What one welcome round did: messages enqueued in the send gateway, and adds settled from their
    messages' outcome (sent, or failed / suppressed)."""

    queued: int = 0
    sent: int = 0
    failed: int = 0


def welcome_key(add_id: int) -> str:
    """The idempotency key of a live-code add's welcome message: one message per add, however often a
    poll (or a retried one) enqueues it."""
    return f"live_code_add:{add_id}"


def _welcome_message_key(item: live_codes.PendingWelcome) -> str:
    return reach.message_key(
        source=reach.Source.LIVE_CODE,
        source_ref=str(item.live_code_id),
        step="welcome",
        idempotency_key=welcome_key(item.add_id),
        customer_id=item.customer_id,
    )


def send_welcomes(
    database: Database, *, workspace_id: int | None = None, now: datetime | None = None
) -> Welcomes:
    """Hand live codes' welcome messages (欢迎语) to the send gateway and keep each add's welcome status
    from what became of its message. On every poll, for each add still pending: no message yet → one is
    decided (`reach.send`, channel wecom_welcome, purpose transactional, due at once; the worker sends it
    right after its periodic tasks, through send_welcome_msg with the welcome code of the add callback);
    a settled message → the add becomes `sent`, or `failed` with the provider's error or the gateway's
    reason (audited); a message still queued or retrying → left to the gateway; no message and older
    than `STALE_WELCOME` → failed at once, without a message. Each add in a transaction
    of its own. `workspace_id`: that workspace only (tests). `siyu worker` and `siyu serve` call it."""
    current = now or utcnow()
    result = Welcomes()
    with database.reader() as session:
        pending = live_codes.pending_welcomes(session, workspace_id=workspace_id)
        outcomes: dict[str, reach.Outcome] = {}
        for ws in sorted({item.workspace_id for item in pending}):
            keys = [_welcome_message_key(i) for i in pending if i.workspace_id == ws]
            outcomes.update(reach.outcomes_by_key(session, workspace_id=ws, keys=keys))
    for item in pending:
        outcome = outcomes.get(_welcome_message_key(item))
        if outcome is not None and not outcome.settled:
            continue  # queued, or retrying within the window: the gateway's worker has it
        try:
            with database.transaction() as session:
                if outcome is None and item.added_at < current - STALE_WELCOME:
                    # a backlog (the worker was down for long, demo adds): settled without a message,
                    # so that it does not fill the gateway's dead letters with codes long expired
                    sent, reason = False, "WeCom's 20-second welcome window passed before it could be sent"
                elif outcome is None:
                    decided = reach.send(
                        session,
                        workspace_id=item.workspace_id,
                        source=reach.Source.LIVE_CODE,
                        source_ref=str(item.live_code_id),
                        step="welcome",
                        idempotency_key=welcome_key(item.add_id),
                        customer_ids=[item.customer_id],
                        content={
                            reach.WELCOME_CHANNEL: {
                                "text": item.text,
                                "sender": item.staff_wecom_userid,
                                "external_userid": item.external_userid,
                            }
                        },
                        purpose="transactional",
                        channel_preference=[reach.WELCOME_CHANNEL],
                        now=current,
                    )
                    result.queued += decided.created
                    if not decided.by_status.get("suppressed"):
                        continue
                    # do-not-contact, erased or merged away: settled at once, nothing will be sent
                    reason = "suppressed by the send gateway: " + ", ".join(decided.by_reason)
                    sent = False
                else:
                    sent = outcome.status in ("sent", "delivered")
                    reason = (
                        f"suppressed by the send gateway: {outcome.detail}"
                        if outcome.status == "suppressed"
                        else outcome.detail
                    )
                if live_codes.settle_welcome(
                    session, workspace_id=item.workspace_id, add_id=item.add_id, sent=sent, reason=reason
                ):
                    if sent:
                        result.sent += 1
                    else:
                        result.failed += 1
        except SiyuError as exc:  # a request the gateway refuses will not change: the add fails with it
            log.warning("welcome message of live-code add %s refused by the gateway: %s", item.add_id, exc)
            with database.transaction() as session:
                if live_codes.settle_welcome(
                    session, workspace_id=item.workspace_id, add_id=item.add_id, sent=False, reason=str(exc)
                ):
                    result.failed += 1
    return result


@dataclass
class LiveCodeSync:
    """What one live-code sync did: ways added, adopted after an interrupted add (and then updated, so
    counted in `updated` too), updated, deleted, and the pushes that failed (staff row id, reason)."""

    added: int = 0
    adopted: int = 0
    updated: int = 0
    deleted: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)


def sync_live_codes(
    database: Database, *, now: datetime | None = None, workspace_id: int | None = None
) -> LiveCodeSync:
    """Push the live codes' staff contact ways that edits left behind to WeCom (add_contact_way,
    update_contact_way, del_contact_way), outside any request: each row is claimed in a transaction
    (the adding marker committed before an add), pushed, and its outcome recorded in another. A
    refusal is kept on the row and tried again after a backoff; a workspace without WeCom settings is
    skipped quietly (its hand-entered QRs serve). `workspace_id`: that workspace only (tests).
    `siyu worker` and `siyu serve` call it on every poll."""
    current = now or utcnow()
    result = LiveCodeSync()
    with database.reader() as session:
        configured = [
            w for w in wecom.configured_workspace_ids(session) if workspace_id is None or w == workspace_id
        ]
        items = live_code_sync.due_for_sync(session, workspace_ids=configured, now=current)
        userids = {
            w: wecom.wecom_userids(
                session, workspace_id=w, user_ids=[i.user_id for i in items if i.workspace_id == w]
            )
            for w in {i.workspace_id for i in items}
        }
        clients = {w: wecom.client_for(session, workspace_id=w) for w in userids}
    try:
        for item in items:
            adding = item.wanted and item.config_id is None
            with database.transaction() as session:
                if not live_code_sync.claim(session, item=item, now=current, adding=adding):
                    continue  # another worker holds it, or an edit changed it: the next poll sees it
            try:
                pushed = wecom.push_way(
                    clients[item.workspace_id],
                    wanted=item.wanted,
                    state=item.state,
                    userid=userids[item.workspace_id].get(item.user_id),
                    remark=item.remark,
                    skip_verify=item.skip_verify,
                    config_id=item.config_id,
                    adding_since=item.adding_since,
                    now=current,
                )
            except SiyuError as exc:
                # WeCom answered the add with a refusal (or it was never sent): no way was made
                answered = not isinstance(exc, WecomApiError) or (
                    exc.errcode is not None and exc.where == ADD_PATH
                )
                with database.transaction() as session:
                    live_code_sync.record_failed(
                        session, item=item, error=str(exc), now=current, nothing_added=adding and answered
                    )
                log.warning("live-code staff row %s not synced with WeCom: %s", item.staff_id, exc)
                result.failures.append((item.staff_id, str(exc)))
                continue
            if pushed.gone:
                with database.transaction() as session:
                    live_code_sync.record_gone(session, item=item)
                result.failures.append((item.staff_id, "the contact way was deleted in WeCom"))
                continue
            with database.transaction() as session:
                live_code_sync.record_synced(
                    session, item=item, config_id=pushed.config_id, qr_url=pushed.qr_code, now=current
                )
            if pushed.adopted:
                result.adopted += 1
            if not item.wanted:
                result.deleted += 1 if (item.config_id or pushed.adopted) else 0
            elif item.config_id is not None or pushed.adopted:
                result.updated += 1
            else:
                result.added += 1
    finally:
        for client in clients.values():
            client.close()
    return result


BACKFILL_DAYS = 7  # the daily job also fetches the days of the last week that have no figures yet


def fetch_group_stats(database: Database, *, workspace_id: int, now: datetime) -> str:
    """The daily job (reach.tasks.SCHEDULE, 06:00): yesterday's group figures (群聊数据统计) from WeCom,
    and any day of the last week still missing; a workspace without WeCom settings is skipped quietly.
    Each day is stored in a transaction of its own, so a refusal keeps the days before it."""
    with database.reader() as session:
        if workspace_id not in wecom.configured_workspaces(session):
            return "no WeCom settings"
        yesterday = wecom.wecom_yesterday(now)
        week = wecom.day_range(yesterday - timedelta(days=BACKFILL_DAYS - 1), yesterday)
        have = wecom.days_fetched(session, workspace_id=workspace_id, start=week[0], end=yesterday)
        client = wecom.client_for(session, workspace_id=workspace_id)
    days = [d for d in week if d == yesterday or d not in have]
    got = _fetch_days(database, workspace_id=workspace_id, days=days, client=client, now=now)
    return f"days {got.days}, owners {got.owners}, rows {got.rows}, calls {got.calls}"


def fetch_group_stat_days(
    database: Database, *, workspace_id: int, days: list[date], now: datetime | None = None
) -> wecom.GroupStatFetch:
    """Fetch the group figures of `days` (`siyu wecom group-stats`), a transaction per day."""
    with database.reader() as session:
        client = wecom.client_for(session, workspace_id=workspace_id)
    return _fetch_days(database, workspace_id=workspace_id, days=days, client=client, now=now)


def _fetch_days(
    database: Database, *, workspace_id: int, days: list[date], client: WecomClient, now: datetime | None
) -> wecom.GroupStatFetch:
    rows = calls = owners = 0
    try:
        for day in days:
            with database.transaction() as session:
                got = wecom.fetch_group_stats(
                    session, workspace_id=workspace_id, days=[day], client=client, now=now
                )
            rows, calls, owners = rows + got.rows, calls + got.calls, got.owners
    finally:
        client.close()
    return wecom.GroupStatFetch(days=len(days), owners=owners, rows=rows, calls=calls)
