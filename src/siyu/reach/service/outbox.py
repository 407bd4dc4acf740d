"""The outbox as workers see it: claim due messages (never the same one twice at once), record what the
provider said, retry with exponential backoff and jitter, dead-letter after the policy's attempts, and
provider receipts (delivered, bounced).

Claims are leases: a claimed row carries a lease token and an expiry; a worker killed mid-send leaves
its rows to be claimed again once the lease expires, and a result is recorded only under the token it
was claimed with. On PostgreSQL the claim is `FOR UPDATE SKIP LOCKED`; on SQLite the claim runs in a
write transaction, which holds the database's one write lock.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.core import domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEventType
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.reach.adapters.base import OutboundMessage, Outcome, SendResult
from siyu.reach.models import (
    PENDING_STATUSES,
    BlockedAddress,
    MessageStatus,
    RateBucket,
    ReachContact,
    ReachMessage,
    Reason,
)
from siyu.reach.service.gateway import address_for, blocked_addresses, consent_reason
from siyu.reach.service.policy import get_policy
from siyu.wecom import service as wecom

MAX_BACKOFF = timedelta(hours=6)
# what a rate-limited channel's bucket may bank beyond one send, in seconds of its rate: a provider's
# limit holds for any one-second window, which then sees at most R·(1 + BURST_SECONDS) + 1 sends, even
# right after a stall or an idle spell (a bucket of a whole second's worth allowed up to 2R); enough
# to absorb a worker's usual lateness, so the steady rate stays R
BURST_SECONDS = 0.1


@dataclass(frozen=True)
class Claimed:
    message: OutboundMessage
    lease_token: str


def backoff(attempts: int, *, base_seconds: float, rng: random.Random | None = None) -> timedelta:
    """The wait before attempt `attempts + 1`: base·2^(attempts−1), capped at six hours, with "equal
    jitter" (half fixed, half random) so that failures of one burst do not retry in lockstep."""
    delay = min(MAX_BACKOFF.total_seconds(), base_seconds * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay / 2 + (rng or random).uniform(0, delay / 2))


def capacity(rate: float) -> float:
    """How many sends a bucket of `rate` per second holds at most: one, and `BURST_SECONDS` of its
    rate."""
    return 1.0 + rate * BURST_SECONDS


@dataclass(frozen=True)
class Taken:
    """What a bucket paid for: `count` sends, and when it holds the next token if it could not pay for
    all that were wanted (None when it could)."""

    count: int
    next_token_at: datetime | None


def _take_tokens(
    session: Session, *, workspace_id: int, channel: str, rate: float, wanted: int, now: datetime
) -> Taken:
    """Take up to `wanted` sends from the workspace's bucket for the channel (capacity `capacity(rate)`,
    also its content when new); the row is locked, so every worker draws from the same bucket.

    The bucket's clock only moves forward: a worker whose `now` is older than the last refill (it read
    the clock, then waited for the lock behind another worker) refills nothing, and leaves the refill
    time where it was; moving it back would pay the same interval twice.
    """
    full = capacity(rate)
    statement = (pg_insert if is_postgres(session) else sqlite_insert)(RateBucket).on_conflict_do_nothing()
    session.execute(
        statement, [{"workspace_id": workspace_id, "channel": channel, "tokens": full, "refilled_at": now}]
    )
    bucket = session.scalars(
        select(RateBucket)
        .where(RateBucket.workspace_id == workspace_id, RateBucket.channel == channel)
        .with_for_update()
    ).one()
    refilled_at = max(bucket.refilled_at, now)
    elapsed = (refilled_at - bucket.refilled_at).total_seconds()
    tokens = min(full, bucket.tokens + elapsed * rate)
    taken = min(wanted, int(tokens))
    bucket.tokens = tokens - taken
    bucket.refilled_at = refilled_at
    if taken == wanted:
        return Taken(taken, None)
    return Taken(taken, refilled_at + timedelta(seconds=(1.0 - bucket.tokens) / rate))


@dataclass(frozen=True)
class ClaimOutcome:
    """The messages leased by one claim, and when the earliest message the rate limits held back can
    have its token (None: none was held back); a worker with nothing to send waits until then."""

    leased: list[Claimed]
    next_token_at: datetime | None


def claim(
    session: Session,
    *,
    limit: int,
    lease_seconds: float = 60.0,
    now: datetime | None = None,
    workspace_id: int | None = None,
    channels: Sequence[str] | None = None,
    exclude_channels: Sequence[str] = (),
) -> list[Claimed]:
    """Lease up to `limit` due messages to the calling worker, in the caller's transaction; only those of
    `channels` when given, and none of `exclude_channels` (a batch channel is claimed on its own).

    Before leasing, each is checked again against what may have changed since it was decided: the
    customer gone or marked do-not-contact, consent withdrawn, the address blocked; such a message is
    suppressed instead (deferred messages never drop otherwise). Per-channel rate limits of the policy
    hold back what the bucket cannot pay for.
    """
    return claim_due(
        session,
        limit=limit,
        lease_seconds=lease_seconds,
        now=now,
        workspace_id=workspace_id,
        channels=channels,
        exclude_channels=exclude_channels,
    ).leased


def claim_due(
    session: Session,
    *,
    limit: int,
    lease_seconds: float = 60.0,
    now: datetime | None = None,
    workspace_id: int | None = None,
    channels: Sequence[str] | None = None,
    exclude_channels: Sequence[str] = (),
) -> ClaimOutcome:
    """`claim`, telling also when the rate limits will pay for the next message they held back."""
    now = now or utcnow()
    query = (
        select(ReachMessage)
        .where(
            ReachMessage.status.in_([s.value for s in PENDING_STATUSES]),
            ReachMessage.due_at <= now,
            (ReachMessage.lease_until.is_(None)) | (ReachMessage.lease_until <= now),
        )
        .order_by(ReachMessage.due_at, ReachMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if workspace_id is not None:
        query = query.where(ReachMessage.workspace_id == workspace_id)
    if channels is not None:
        query = query.where(ReachMessage.channel.in_(list(channels)))
    if exclude_channels:
        query = query.where(ReachMessage.channel.not_in(list(exclude_channels)))
    rows = list(session.scalars(query))
    if not rows:
        return ClaimOutcome([], None)
    by_workspace: dict[int, list[ReachMessage]] = {}
    for row in rows:
        by_workspace.setdefault(row.workspace_id, []).append(row)
    leased: list[Claimed] = []
    next_token_at: datetime | None = None
    for ws, messages in by_workspace.items():
        policy = get_policy(session, workspace_id=ws)
        messages = _recheck(session, workspace_id=ws, messages=messages, now=now)
        allowed: list[ReachMessage] = []
        for channel in sorted({m.channel or "" for m in messages}):
            group = [m for m in messages if (m.channel or "") == channel]
            rate = policy.rate_limits.get(channel)
            if rate is not None:
                taken = _take_tokens(
                    session, workspace_id=ws, channel=channel, rate=rate, wanted=len(group), now=now
                )
                group = group[: taken.count]
                if taken.next_token_at is not None:
                    next_token_at = min(next_token_at or taken.next_token_at, taken.next_token_at)
            allowed.extend(group)
        senders = _wecom_senders(session, workspace_id=ws, messages=allowed)
        for message in allowed:
            token = str(uuid.uuid4())
            message.lease_token = token
            message.lease_until = now + timedelta(seconds=lease_seconds)
            message.attempts += 1
            message.updated_at = now
            leased.append(
                Claimed(
                    OutboundMessage(
                        message_id=message.id,
                        workspace_id=message.workspace_id,
                        customer_id=message.customer_id,
                        channel=message.channel or "",
                        address=message.address or "",
                        purpose=message.purpose,
                        content=dict(message.content or {}),
                        idempotency_key=message.idempotency_key,
                        attempt=message.attempts,
                        route=(
                            {"sender": senders[message.address]}
                            if message.channel == "wecom" and message.address in senders
                            else {}
                        ),
                    ),
                    token,
                )
            )
    session.flush()
    return ClaimOutcome(leased, next_token_at)


def _wecom_senders(session: Session, *, workspace_id: int, messages: list[ReachMessage]) -> dict[str, str]:
    """The staff member who sends each WeCom message: a friend of the customer now (wecom follows)."""
    externals = [m.address for m in messages if m.channel == "wecom" and m.address]
    if not externals:
        return {}
    return wecom.senders(session, workspace_id=workspace_id, external_userids=externals)


def _recheck(
    session: Session, *, workspace_id: int, messages: list[ReachMessage], now: datetime
) -> list[ReachMessage]:
    ids = [m.customer_id for m in messages]
    facts = customers.contact_facts(session, workspace_id=workspace_id, customer_ids=ids)
    contacts = {
        c.customer_id: c
        for c in session.scalars(select(ReachContact).where(ReachContact.customer_id.in_(ids)))
    }
    blocked = blocked_addresses(
        session, workspace_id=workspace_id, addresses=[(m.channel or "", m.address or "") for m in messages]
    )
    keep: list[ReachMessage] = []
    for message in messages:
        fact = facts.get(message.customer_id)
        contact = contacts.get(message.customer_id)
        reason: Reason | None
        if fact is None or not fact.live:
            reason = Reason.CUSTOMER_GONE
        elif contact is not None and contact.do_not_contact:
            reason = Reason.DO_NOT_CONTACT
        elif (message.channel or "", message.address or "") in blocked:
            reason = Reason.ADDRESS_BLOCKED
        elif address_for(fact, message.channel or "") is None:
            reason = Reason.NO_ADDRESS
        else:
            reason = consent_reason(fact, message.channel or "", message.purpose)
        if reason is None:
            keep.append(message)
            continue
        message.status = MessageStatus.SUPPRESSED.value
        message.reason = reason.value
        message.explanation = [
            *message.explanation,
            {"channel": message.channel, "reason": reason.value, "at": "send"},
        ]
        message.due_at = None
        message.updated_at = now
    return keep


def complete(
    session: Session,
    *,
    message_id: int,
    lease_token: str,
    result: SendResult,
    retry_base_seconds: float = 30.0,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> str:
    """Record what the provider said about one leased message; returns its new status, or "lost" when
    the lease expired and another worker holds the message now (nothing is recorded then)."""
    now = now or utcnow()
    message = session.scalars(
        select(ReachMessage)
        .where(ReachMessage.id == message_id, ReachMessage.lease_token == lease_token)
        .with_for_update()
    ).one_or_none()
    if message is None or message.status not in {s.value for s in PENDING_STATUSES}:
        return "lost"
    message.lease_token = None
    message.lease_until = None
    message.updated_at = now
    payload: dict[str, Any] = {
        "message_id": message.id,
        "channel": message.channel,
        "source": message.source,
        "source_ref": message.source_ref,
    }
    if result.outcome is Outcome.SENT:
        message.status = MessageStatus.SENT.value
        message.provider_message_id = result.provider_message_id
        message.sent_at = now
        message.due_at = None
        message.last_error = None
        event = DomainEventType.MESSAGE_SENT
    else:
        message.last_error = result.error
        policy = get_policy(session, workspace_id=message.workspace_id)
        if result.outcome is Outcome.RETRY and message.attempts < policy.max_attempts:
            message.status = MessageStatus.QUEUED.value
            message.due_at = now + (
                timedelta(seconds=result.retry_after_seconds)
                if result.retry_after_seconds is not None
                else backoff(message.attempts, base_seconds=retry_base_seconds, rng=rng)
            )
            return message.status
        message.status = MessageStatus.FAILED.value
        message.failed_at = now
        message.due_at = None
        if result.address_rejected and message.channel and message.address:
            block_address(
                session,
                workspace_id=message.workspace_id,
                channel=message.channel,
                address=message.address,
                reason=result.error or "rejected by the provider",
            )
        payload["error"] = (result.error or "")[:500]
        event = DomainEventType.MESSAGE_FAILED
    domain_events.record(
        session,
        workspace_id=message.workspace_id,
        type=event,
        customer_id=message.customer_id,
        payload=payload,
        occurred_at=now,
    )
    return message.status


def block_address(session: Session, *, workspace_id: int, channel: str, address: str, reason: str) -> None:
    """Block an address for a channel (idempotent)."""
    statement = (pg_insert if is_postgres(session) else sqlite_insert)(
        BlockedAddress
    ).on_conflict_do_nothing()
    session.execute(
        statement,
        [
            {
                "workspace_id": workspace_id,
                "channel": channel,
                "address": address,
                "reason": reason[:1000],
                "created_at": utcnow(),
            }
        ],
    )


def record_receipt(
    session: Session,
    *,
    workspace_id: int,
    provider_message_id: str,
    outcome: str,
    detail: str = "",
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ReachMessage | None:
    """A provider's report on a sent message: `delivered`, `bounced` (the address is blocked) or
    `failed`. Repeated or late receipts change nothing further; None if no message has that id.

    `idempotency_key`, which providers echo (Aliyun's OutId), finds a message whose send was accepted but
    not yet recorded (its worker died in between): the receipt settles it, and the lease holder's
    late result is then "lost", so it is not sent again.
    """
    now = now or utcnow()
    message = session.scalars(
        select(ReachMessage)
        .where(
            ReachMessage.workspace_id == workspace_id, ReachMessage.provider_message_id == provider_message_id
        )
        .with_for_update()
    ).first()
    if message is None and idempotency_key:
        message = session.scalars(
            select(ReachMessage)
            .where(
                ReachMessage.workspace_id == workspace_id,
                ReachMessage.idempotency_key == idempotency_key,
                ReachMessage.status.in_([s.value for s in PENDING_STATUSES]),
                ReachMessage.attempts > 0,
            )
            .with_for_update()
        ).first()
        if message is None:
            return None
        message.status = MessageStatus.SENT.value
        message.provider_message_id = provider_message_id
        message.sent_at = now
        message.due_at = None
        message.lease_token = None
        message.lease_until = None
        domain_events.record(
            session,
            workspace_id=workspace_id,
            type=DomainEventType.MESSAGE_SENT,
            customer_id=message.customer_id,
            payload={
                "message_id": message.id,
                "channel": message.channel,
                "source": message.source,
                "source_ref": message.source_ref,
            },
            occurred_at=now,
        )
    if message is None:
        return None
    apply_receipt(session, message=message, outcome=outcome, detail=detail, now=now)
    return message


def apply_receipt(
    session: Session, *, message: ReachMessage, outcome: str, detail: str = "", now: datetime
) -> bool:
    """Settle one sent message (locked by the caller) as the receipt says; False when it was settled
    already (a repeated or late receipt changes nothing)."""
    if outcome == "delivered":
        if message.status != MessageStatus.SENT.value:
            return False
        message.status = MessageStatus.DELIVERED.value
        message.delivered_at = now
        event = DomainEventType.MESSAGE_DELIVERED
    else:
        if message.status not in (MessageStatus.SENT.value, MessageStatus.DELIVERED.value):
            return False
        message.status = MessageStatus.FAILED.value
        message.failed_at = now
        message.last_error = f"{outcome}: {detail}".strip()[:2000]
        if outcome == "bounced" and message.channel and message.address:
            block_address(
                session,
                workspace_id=message.workspace_id,
                channel=message.channel,
                address=message.address,
                reason=f"bounced: {detail}",
            )
        event = DomainEventType.MESSAGE_FAILED
    message.updated_at = now
    domain_events.record(
        session,
        workspace_id=message.workspace_id,
        type=event,
        customer_id=message.customer_id,
        payload={"message_id": message.id, "outcome": outcome},
        occurred_at=now,
    )
    return True


def release_expired(session: Session, *, now: datetime | None = None) -> int:
    """Clear leases that expired (cosmetic: `claim` takes expired leases anyway); returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(ReachMessage)
        .where(
            ReachMessage.lease_until.is_not(None),
            ReachMessage.lease_until <= now,
            ReachMessage.status.in_([s.value for s in PENDING_STATUSES]),
        )
        .values(lease_token=None, lease_until=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _not_in_flight(now: datetime) -> Any:
    # a message a worker holds under a live lease is being sent right now: it finishes as it would
    return (ReachMessage.lease_until.is_(None)) | (ReachMessage.lease_until <= now)


def hold(
    session: Session, *, workspace_id: int, source: str, source_ref: str, now: datetime | None = None
) -> int:
    """Hold every waiting message of a source (queued or deferred, not in a worker's hands): no worker
    claims them until `release`. They keep their due time and still count against caps. Returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(ReachMessage)
        .where(
            ReachMessage.workspace_id == workspace_id,
            ReachMessage.source == source,
            ReachMessage.source_ref == source_ref,
            ReachMessage.status.in_([s.value for s in PENDING_STATUSES]),
            _not_in_flight(now),
        )
        .values(status=MessageStatus.HELD.value, lease_token=None, lease_until=None, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release(
    session: Session, *, workspace_id: int, source: str, source_ref: str, now: datetime | None = None
) -> int:
    """Let the held messages of a source go again: queued, each due when it was (a message deferred to
    the end of quiet hours still waits for it). Returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(ReachMessage)
        .where(
            ReachMessage.workspace_id == workspace_id,
            ReachMessage.source == source,
            ReachMessage.source_ref == source_ref,
            ReachMessage.status == MessageStatus.HELD.value,
        )
        .values(status=MessageStatus.QUEUED.value, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def cancel(
    session: Session, *, workspace_id: int, source: str, source_ref: str, now: datetime | None = None
) -> int:
    """Suppress, with the reason `cancelled`, every message of a source that has not left (queued,
    deferred or held, not in a worker's hands). Returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(ReachMessage)
        .where(
            ReachMessage.workspace_id == workspace_id,
            ReachMessage.source == source,
            ReachMessage.source_ref == source_ref,
            ReachMessage.status.in_([*(s.value for s in PENDING_STATUSES), MessageStatus.HELD.value]),
            _not_in_flight(now),
        )
        .values(
            status=MessageStatus.SUPPRESSED.value,
            reason=Reason.CANCELLED.value,
            due_at=None,
            lease_token=None,
            lease_until=None,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
