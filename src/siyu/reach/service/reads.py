"""What members read and do about the outbox: messages (the outbox viewer: what each customer received),
dead letters and their requeue, and the accounting of a source (its counts add up to its audience)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.errors import Conflict, NotFound
from siyu.core.masking import mask_identity
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.reach.models import MessageStatus, ReachMessage
from siyu.reach.schemas import MessageOut
from siyu.reach.service.gateway import ADDRESS_KIND

DELIVERED_STATUSES = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value)


@dataclass
class Accounting:
    source: str
    source_ref: str
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)


def message_out(message: ReachMessage, *, actor: Actor) -> MessageOut:
    """A message as this actor may see it (addresses masked for staff)."""
    kind = ADDRESS_KIND.get(message.channel or "") or ""
    address = (
        mask_identity(kind, message.address, masked=actor.sees_masked_phones) if message.address else None
    )
    return MessageOut(
        id=message.id,
        customer_id=message.customer_id,
        source=message.source,
        source_ref=message.source_ref,
        step=message.step,
        idempotency_key=message.idempotency_key,
        purpose=message.purpose,
        channel=message.channel,
        address=address,
        content=message.content or {},
        status=message.status,
        reason=message.reason,
        explanation=message.explanation or [],
        planned_at=message.planned_at,
        due_at=message.due_at,
        attempts=message.attempts,
        last_error=message.last_error,
        provider_message_id=message.provider_message_id,
        created_at=message.created_at,
        sent_at=message.sent_at,
        delivered_at=message.delivered_at,
        failed_at=message.failed_at,
    )


def list_messages(
    session: Session,
    *,
    actor: Actor,
    statuses: list[str] | None = None,
    customer_id: int | None = None,
    source: str | None = None,
    source_ref: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[MessageOut]:
    """Messages of the workspace, newest first (staff: of their own customers only)."""
    actor.require(Permission.READ)
    query = select(ReachMessage).where(ReachMessage.workspace_id == actor.workspace_id)
    if actor.sees_only_own_customers:
        query = query.where(ReachMessage.customer_id.in_(customers.visible_customers(actor)))
    if statuses:
        query = query.where(ReachMessage.status.in_(statuses))
    if customer_id is not None:
        query = query.where(ReachMessage.customer_id == customer_id)
    if source:
        query = query.where(ReachMessage.source == source)
    if source_ref:
        query = query.where(ReachMessage.source_ref == source_ref)
    if before_id is not None:
        query = query.where(ReachMessage.id < before_id)
    limit = customers.clamp_limit(limit)
    rows = session.scalars(query.order_by(ReachMessage.id.desc()).limit(limit))
    return [message_out(m, actor=actor) for m in rows]


def get_message(session: Session, *, actor: Actor, message_id: int) -> MessageOut:
    actor.require(Permission.READ)
    message = session.get(ReachMessage, message_id)
    if message is None or message.workspace_id != actor.workspace_id:
        raise NotFound(f"no message {message_id} in this workspace", where="message_id")
    customers.ensure_visible(session, actor=actor, customer_id=message.customer_id)
    return message_out(message, actor=actor)


def requeue(session: Session, *, actor: Actor, message_id: int) -> MessageOut:
    """Send a dead letter again: attempts start over, due now (its idempotency key stays the same)."""
    actor.require(Permission.WRITE)
    message = session.get(ReachMessage, message_id, with_for_update=True)
    if message is None or message.workspace_id != actor.workspace_id:
        raise NotFound(f"no message {message_id} in this workspace", where="message_id")
    customers.ensure_visible(session, actor=actor, customer_id=message.customer_id)
    if message.status != MessageStatus.FAILED.value:
        raise Conflict(
            f"message {message_id} is {message.status}, not a dead letter",
            where="status",
            hint="only failed messages can be requeued",
        )
    now = utcnow()
    message.status = MessageStatus.QUEUED.value
    message.attempts = 0
    message.due_at = now
    message.failed_at = None
    message.updated_at = now
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="reach.requeue",
        target_type="reach_message",
        target_id=message.id,
        detail={"last_error": (message.last_error or "")[:200]},
    )
    return message_out(message, actor=actor)


def accounting(session: Session, *, workspace_id: int, source: str, source_ref: str) -> Accounting:
    """Every decision of one source (a broadcast, a journey…): counts per status and per reason."""
    result = Accounting(source=source, source_ref=source_ref)
    for status, reason, count in session.execute(
        select(ReachMessage.status, ReachMessage.reason, func.count())
        .where(
            ReachMessage.workspace_id == workspace_id,
            ReachMessage.source == source,
            ReachMessage.source_ref == source_ref,
        )
        .group_by(ReachMessage.status, ReachMessage.reason)
    ):
        result.total += count
        result.by_status[status] = result.by_status.get(status, 0) + count
        if reason:
            result.by_reason[reason] = result.by_reason.get(reason, 0) + count
    return result


def received_by_customer(
    session: Session, *, actor: Actor, limit: int = 50, customer_id: int | None = None
) -> list[dict[str, Any]]:
    """The outbox viewer: per customer, the messages that went out to them (sent or delivered), newest
    customers first."""
    messages = list_messages(
        session,
        actor=actor,
        statuses=list(DELIVERED_STATUSES),
        customer_id=customer_id,
        limit=customers.MAX_LIMIT,
    )
    grouped: dict[int, list[MessageOut]] = {}
    for message in messages:
        grouped.setdefault(message.customer_id, []).append(message)
    return [{"customer_id": c, "messages": items} for c, items in list(grouped.items())[:limit]]


def reached_customers(*, workspace_id: int) -> Select[Any]:
    """Every message that went out (sent or delivered) as (`customer_id`, `reached_at`: when it was
    sent, else delivered), for the analytical domains to compose in SQL."""
    return select(
        ReachMessage.customer_id.label("customer_id"),
        func.coalesce(ReachMessage.sent_at, ReachMessage.delivered_at).label("reached_at"),
    ).where(
        ReachMessage.workspace_id == workspace_id,
        ReachMessage.status.in_(DELIVERED_STATUSES),
        func.coalesce(ReachMessage.sent_at, ReachMessage.delivered_at).is_not(None),
    )


def delivered_by_step(session: Session, *, workspace_id: int, source: str, source_ref: str) -> dict[str, int]:
    """How many messages of a source went out (sent or delivered), per step (a broadcast's variant)."""
    return {
        step: int(count)
        for step, count in session.execute(
            select(ReachMessage.step, func.count())
            .where(
                ReachMessage.workspace_id == workspace_id,
                ReachMessage.source == source,
                ReachMessage.source_ref == source_ref,
                ReachMessage.status.in_(DELIVERED_STATUSES),
            )
            .group_by(ReachMessage.step)
        )
    }


@dataclass(frozen=True)
class Outcome:
    """Where one message stands, for a source that follows its own messages (a live code's welcome):
    `settled` once nothing more will happen to it (sent, delivered, failed, suppressed); `detail` says
    why it failed (the provider's error) or was suppressed (the reason)."""

    status: str
    settled: bool
    detail: str = ""


_SETTLED = frozenset(
    {
        MessageStatus.SENT.value,
        MessageStatus.DELIVERED.value,
        MessageStatus.FAILED.value,
        MessageStatus.SUPPRESSED.value,
    }
)


def outcomes_by_key(session: Session, *, workspace_id: int, keys: list[str]) -> dict[str, Outcome]:
    """The messages of the workspace with these idempotency keys (`message_key`), by key; a key with no
    message is absent."""
    found: dict[str, Outcome] = {}
    for start in range(0, len(keys), 500):
        for key, status, reason, error in session.execute(
            select(
                ReachMessage.idempotency_key,
                ReachMessage.status,
                ReachMessage.reason,
                ReachMessage.last_error,
            ).where(
                ReachMessage.workspace_id == workspace_id,
                ReachMessage.idempotency_key.in_(keys[start : start + 500]),
            )
        ):
            detail = (reason or "") if status == MessageStatus.SUPPRESSED.value else (error or "")
            found[key] = Outcome(status, status in _SETTLED, detail)
    return found
