"""Broadcast verbs: create, start (now or scheduled), the audience snapshot and the gateway's decisions
in chunks, pause / resume / cancel, and the progress and results of a broadcast.

Every message goes through the send gateway (`siyu.reach.service.send`) with source "broadcast",
source_ref the broadcast's id and step its variant, so a repeated or interrupted start decides no
customer twice. The snapshot (`broadcast_recipient`) records who is in the audience and in which
variant; with reach's accounting it makes the counts add up to the audience in every state.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, text, update
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.broadcasts.models import Broadcast, BroadcastRecipient, BroadcastStatus, RecipientOutcome
from siyu.content import service as content_service
from siyu.core import audit
from siyu.core.db import among, among_chunk, is_postgres
from siyu.core.errors import Conflict, NotFound, SiyuError, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.customers import service as customers
from siyu.experiments import service as experiments
from siyu.orders import service as orders
from siyu.reach import service as reach
from siyu.segments import service as segments

log = logging.getLogger("siyu.broadcasts")
SOURCE = "broadcast"
HOLDOUT = experiments.HOLDOUT
CHUNK = 5000  # customers decided per transaction
NAME_MAX = 200
# a worker holding a message of a paused or cancelled broadcast may hand it back as a retry; the hold
# or cancellation is applied again for this long after the pause or cancel, so it cannot slip out
REAPPLY = timedelta(hours=2)
STATUSES = tuple(s.value for s in BroadcastStatus)


def _get(session: Session, *, workspace_id: int, broadcast_id: int, lock: bool = False) -> Broadcast:
    query = select(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.workspace_id == workspace_id)
    if lock:
        query = query.with_for_update()
    broadcast = session.scalars(query).one_or_none()
    if broadcast is None:
        raise NotFound(f"broadcast {broadcast_id} does not exist in this workspace", where="broadcast_id")
    return broadcast


def get_broadcast(session: Session, *, actor: Actor, broadcast_id: int) -> Broadcast:
    actor.require(Permission.READ)
    return _get(session, workspace_id=actor.workspace_id, broadcast_id=broadcast_id)


def list_broadcasts(session: Session, *, actor: Actor, limit: int = 200) -> list[Broadcast]:
    """The workspace's broadcasts, newest first."""
    actor.require(Permission.READ)
    return list(
        session.scalars(
            select(Broadcast)
            .where(Broadcast.workspace_id == actor.workspace_id)
            .order_by(Broadcast.created_at.desc(), Broadcast.id.desc())
            .limit(limit)
        )
    )


def _check_variants(variants: dict[str, Any], *, purpose: str, channels: list[str]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, spec in variants.items():
        key = str(name).strip()
        if not key or key == HOLDOUT or len(key) > 64:
            raise ValidationFailed(
                f"variant name {name!r} cannot be used",
                where=f"variants.{name}",
                hint=f'1–64 characters, not "{HOLDOUT}"',
            )
        if not isinstance(spec, dict) or not isinstance(spec.get("content"), dict):
            raise ValidationFailed(
                f"variant {key!r} needs its content",
                where=f"variants.{key}.content",
                hint='e.g. {"weight": 1, "content": {"sms": {"text": "…"}}}',
            )
        weight = spec.get("weight", 1)
        if not isinstance(weight, int | float) or weight <= 0:
            raise ValidationFailed(f"variant {key!r} needs a positive weight", where=f"variants.{key}.weight")
        reach.check_request(
            source=SOURCE, source_ref="check", purpose=purpose, channels=channels, content=spec["content"]
        )
        checked[key] = {"weight": float(weight), "content": spec["content"]}
    return checked


def create_broadcast(
    session: Session,
    *,
    actor: Actor,
    name: str,
    purpose: str,
    channel_preference: list[str],
    content: dict[str, Any],
    segment_id: int | None = None,
    customer_ids: list[int] | None = None,
    identity_kind: str | None = None,
    identity_values: list[str] | None = None,
    variants: dict[str, Any] | None = None,
    holdout_share: float = 0.0,
    send_at: datetime | None = None,
    conversion_window_days: int = 7,
    coupon_template_id: int | None = None,
) -> Broadcast:
    """A draft broadcast to a segment (its members when it starts) or to a list of customers (ids, or
    identity values of one kind such as phones). With variants or a holdout an experiment is created for
    it (key `broadcast-…`), which assigns each customer when the broadcast starts."""
    actor.require(Permission.WRITE)
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise ValidationFailed(f"a broadcast needs a name of 1–{NAME_MAX} characters", where="name")
    channels = list(channel_preference)
    reach.check_request(
        source=SOURCE, source_ref="check", purpose=purpose, channels=channels, content=content
    )
    # content is personalised at send time: a template that cannot compile is refused now, not then
    content_service.compile_for_send(session, workspace_id=actor.workspace_id, content=content)
    if coupon_template_id is not None:
        coupons.get_template(session, workspace_id=actor.workspace_id, template_id=coupon_template_id)
    given = [segment_id is not None, bool(customer_ids), bool(identity_values)]
    if sum(given) != 1:
        raise ValidationFailed(
            "give the audience as exactly one of a segment, customer ids or identity values",
            where="audience",
            hint="segment_id, or customer_ids, or identity_kind with identity_values",
        )
    ids: list[int] = []
    if segment_id is not None:
        segments.get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    elif customer_ids:
        wanted = list(dict.fromkeys(int(c) for c in customer_ids))
        found = customers.visible_customer_ids(session, actor=actor, customer_ids=wanted)
        missing = [c for c in wanted if c not in found]
        if missing:
            raise NotFound(
                f"{len(missing)} customer id(s) name no customer you can see: {missing[:10]}",
                where="customer_ids",
                hint="list customers of this workspace",
            )
        ids = wanted
    else:
        resolved, unknown = customers.customer_ids_by_identity(
            session, actor=actor, kind=identity_kind or "", values=identity_values or []
        )
        if unknown:
            raise NotFound(
                f"{len(unknown)} {identity_kind} value(s) name no customer you can see: {unknown[:10]}",
                where="identity_values",
                hint="remove them, or import those customers first",
            )
        ids = list(dict.fromkeys(resolved.values()))
    if not 0 <= holdout_share < 1:
        raise ValidationFailed(
            f"holdout share {holdout_share} is not in [0, 1)", where="holdout_share", hint="e.g. 0.1"
        )
    if not 1 <= conversion_window_days <= 90:
        raise ValidationFailed(
            f"a conversion window of {conversion_window_days} days is out of range",
            where="conversion_window_days",
            hint="1 to 90 days",
        )
    if send_at is not None and send_at.tzinfo is None:
        raise ValidationFailed(
            "send_at has no time zone", where="send_at", hint="e.g. 2026-06-01T10:00:00+08:00"
        )
    checked = _check_variants(variants or {}, purpose=purpose, channels=channels)
    for key, spec in checked.items():
        try:
            content_service.compile_for_send(
                session, workspace_id=actor.workspace_id, content=spec["content"]
            )
        except ValidationFailed as error:
            raise ValidationFailed(
                error.message, where=f"variants.{key}.{error.where}", hint=error.hint, details=error.details
            ) from error
    if len(checked) == 1 and not holdout_share:
        raise ValidationFailed(
            "one variant alone compares with nothing",
            where="variants",
            hint="give two variants or more, or a holdout share",
        )
    now = utcnow()
    broadcast = Broadcast(
        workspace_id=actor.workspace_id,
        name=name,
        status=BroadcastStatus.DRAFT.value,
        purpose=purpose,
        segment_id=segment_id,
        customer_ids=ids,
        channel_preference=channels,
        content=content,
        variants=checked,
        holdout_share=float(holdout_share),
        send_at=send_at,
        conversion_window_days=conversion_window_days,
        coupon_template_id=coupon_template_id,
        created_by_user_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(broadcast)
    session.flush()
    if checked or holdout_share:
        arms = {k: v["weight"] for k, v in checked.items()} or {"message": 1.0}
        experiment = experiments.create_experiment(
            session,
            actor=actor,
            key=f"broadcast-{broadcast.id}-{uuid.uuid4().hex[:6]}",
            name=name,
            variants=arms,
            holdout_share=float(holdout_share),
            goal_window_days=conversion_window_days,
        )
        broadcast.experiment_id = experiment.id
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="broadcast.create",
        target_type="broadcast",
        target_id=broadcast.id,
        detail={
            "name": name,
            "segment_id": segment_id,
            "listed": len(ids),
            "channels": channels,
            "variants": list(checked),
            "holdout_share": holdout_share,
        },
    )
    return broadcast


def _record(
    session: Session, broadcast: Broadcast, *, action: str, user_id: int | None, **detail: Any
) -> None:
    audit.record(
        session,
        workspace_id=broadcast.workspace_id,
        actor_user_id=user_id,
        action=f"broadcast.{action}",
        target_type="broadcast",
        target_id=broadcast.id,
        detail={"status": broadcast.status, **detail},
    )


def start_broadcast(
    session: Session, *, actor: Actor, broadcast_id: int, now: datetime | None = None
) -> Broadcast:
    """Send a draft: now (the audience snapshot is taken in this transaction; workers decide and send
    it in chunks), or, with a `send_at` in the future, scheduled for then. Starting a broadcast that is
    scheduled, sending or sent already changes nothing."""
    actor.require(Permission.WRITE)
    now = now or utcnow()
    broadcast = _get(session, workspace_id=actor.workspace_id, broadcast_id=broadcast_id, lock=True)
    if broadcast.status in (BroadcastStatus.SENDING, BroadcastStatus.SENT, BroadcastStatus.SCHEDULED):
        return broadcast
    if broadcast.status != BroadcastStatus.DRAFT:
        raise Conflict(
            f"broadcast {broadcast.id} is {broadcast.status}; only a draft starts",
            where="status",
            hint="a paused broadcast resumes; a cancelled one is over",
        )
    if broadcast.send_at is not None and broadcast.send_at > now:
        broadcast.status = BroadcastStatus.SCHEDULED.value
        broadcast.updated_at = now
        _record(
            session,
            broadcast,
            action="schedule",
            user_id=actor.user_id,
            send_at=broadcast.send_at.isoformat(),
        )
        return broadcast
    _snapshot(session, actor=actor, broadcast=broadcast, now=now)
    return broadcast


def _snapshot(session: Session, *, actor: Actor, broadcast: Broadcast, now: datetime) -> None:
    """Take the audience (the segment's members now, or the list), assign variants, record it all."""
    if broadcast.segment_id is not None:
        segment = segments.get_segment(
            session, workspace_id=broadcast.workspace_id, segment_id=broadcast.segment_id
        )
        ids = sorted(segments.member_ids(session, actor=actor, rule=segment.rule, now=now))
    else:
        ids = sorted(broadcast.customer_ids)
    arms: dict[int, str | None] = {}
    if broadcast.experiment_id is not None:
        experiment, _ = experiments.get_experiment(
            session, actor=actor, experiment_id=broadcast.experiment_id
        )
        if experiment.status == "draft":
            experiments.start_experiment(session, actor=actor, experiment_id=experiment.id)
        arms = experiments.assign_many(
            session,
            workspace_id=broadcast.workspace_id,
            experiment_id=broadcast.experiment_id,
            customer_ids=ids,
            at=now,
        )
    named = bool(broadcast.variants)
    rows = []
    for customer_id in ids:
        arm = arms.get(customer_id, "")
        holdout = broadcast.experiment_id is not None and arm is None
        rows.append(
            {
                "broadcast_id": broadcast.id,
                "customer_id": customer_id,
                "workspace_id": broadcast.workspace_id,
                "variant": HOLDOUT if holdout else (arm if named else "") or "",
                "outcome": (RecipientOutcome.HOLDOUT if holdout else RecipientOutcome.PENDING).value,
                "decided_at": now if holdout else None,
            }
        )
    for start in range(0, len(rows), 5000):
        session.execute(insert(BroadcastRecipient), rows[start : start + 5000])
    broadcast.audience_size = len(ids)
    broadcast.status = BroadcastStatus.SENDING.value
    broadcast.started_at = now
    broadcast.updated_at = now
    _record(
        session,
        broadcast,
        action="start",
        user_id=actor.user_id,
        audience=len(ids),
        holdout=sum(1 for r in rows if r["variant"] == HOLDOUT),
    )


def start_due(session: Session, *, now: datetime | None = None) -> list[int]:
    """Start every scheduled broadcast whose time has come, as the member who created it (their view of
    the customers decides the segment's members); returns their ids. One that cannot start (its
    creator left the workspace, its segment was deleted) is paused instead, the error audited."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Broadcast)
            .where(Broadcast.status == BroadcastStatus.SCHEDULED.value, Broadcast.send_at <= now)
            .order_by(Broadcast.send_at, Broadcast.id)
            .with_for_update(skip_locked=True)
        )
    )
    started: list[int] = []
    for broadcast in due:
        try:
            with session.begin_nested():  # one broadcast that cannot start must not hold the others back
                if broadcast.created_by_user_id is None:
                    raise Conflict(
                        f"broadcast {broadcast.id} has no creator to start it as",
                        where="created_by_user_id",
                        hint="cancel it and create it again",
                    )
                actor = auth.actor_for(
                    session,
                    user_id=broadcast.created_by_user_id,
                    workspace_id=broadcast.workspace_id,
                    via="cli",
                )
                _snapshot(session, actor=actor, broadcast=broadcast, now=now)
            started.append(broadcast.id)
        except SiyuError as error:
            # paused, with the reason in its audit trail: a member fixes the cause and resumes it
            broadcast.status = BroadcastStatus.PAUSED.value
            broadcast.paused_at = now
            broadcast.updated_at = now
            _record(session, broadcast, action="pause", user_id=None, error=error.message[:500])
    return started


def sending_ids(session: Session) -> list[tuple[int, int]]:
    """(workspace id, broadcast id) of every broadcast that is sending, oldest first (for the worker)."""
    return [
        (ws, b)
        for ws, b in session.execute(
            select(Broadcast.workspace_id, Broadcast.id)
            .where(Broadcast.status == BroadcastStatus.SENDING.value)
            .order_by(Broadcast.started_at, Broadcast.id)
        )
    ]


def _issue_coupons(session: Session, *, broadcast: Broadcast, customer_ids: list[int], now: datetime) -> None:
    """The broadcast's coupon for each of these customers, before their messages are rendered (so the
    content's `coupon_code` is theirs): one per customer and broadcast, however often this runs. A
    customer whose message the gateway then suppresses keeps the coupon — it sits in their wallet like
    any issued coupon. Past the template's caps, or once it is archived, a customer gets none; a message
    whose content needs the code is then suppressed as `render_failed`, with the reason."""
    assert broadcast.coupon_template_id is not None
    for customer_id in customer_ids:
        try:
            with session.begin_nested():
                coupons.issue(
                    session,
                    workspace_id=broadcast.workspace_id,
                    template_id=broadcast.coupon_template_id,
                    customer_id=customer_id,
                    source_kind="broadcast",
                    source_ref=str(broadcast.id),
                    idempotency_key=f"broadcast:{broadcast.id}:{customer_id}",
                    actor_user_id=broadcast.created_by_user_id,
                    at=now,
                )
        except Conflict as refused:  # a cap reached, the template archived: this customer gets none
            log.info("broadcast %s issued customer %s no coupon: %s", broadcast.id, customer_id, refused)


STATISTICS_AFTER = 5_000  # decided messages of one broadcast at which the statistics are first refreshed


def decide_next(
    session: Session, *, workspace_id: int, broadcast_id: int, limit: int = CHUNK, now: datetime | None = None
) -> int:
    """Let the gateway decide the next `limit` customers of a sending broadcast (in customer id order),
    in the caller's transaction; returns how many were decided (0: none left, or not sending). The
    broadcast's row is locked, so two workers never decide one chunk at once; and should a chunk be
    decided again after a crash, the gateway's idempotency key leaves each customer's message as it was."""
    now = now or utcnow()
    broadcast = _get(session, workspace_id=workspace_id, broadcast_id=broadcast_id, lock=True)
    if broadcast.status != BroadcastStatus.SENDING:
        return 0
    pending = list(
        session.execute(
            select(BroadcastRecipient.customer_id, BroadcastRecipient.variant)
            .where(
                BroadcastRecipient.broadcast_id == broadcast.id,
                BroadcastRecipient.outcome == RecipientOutcome.PENDING.value,
            )
            .order_by(BroadcastRecipient.customer_id)
            .limit(limit)
        ).tuples()
    )
    if not pending:
        return 0
    by_variant: dict[str, list[int]] = {}
    for customer_id, variant in pending:
        by_variant.setdefault(variant, []).append(customer_id)
    if broadcast.coupon_template_id is not None:
        _issue_coupons(session, broadcast=broadcast, customer_ids=[c for c, _ in pending], now=now)
    for variant, ids in sorted(by_variant.items()):
        body = broadcast.variants[variant]["content"] if variant else broadcast.content
        reach.send(
            session,
            workspace_id=workspace_id,
            source=SOURCE,
            source_ref=str(broadcast.id),
            step=variant,
            customer_ids=ids,
            content=body,
            purpose=broadcast.purpose,
            channel_preference=broadcast.channel_preference,
            personalise=True,
            actor_user_id=broadcast.created_by_user_id,
            now=now,
        )
        size = among_chunk(session)
        for start in range(0, len(ids), size):
            session.execute(
                update(BroadcastRecipient)
                .where(
                    BroadcastRecipient.broadcast_id == broadcast.id,
                    among(session, BroadcastRecipient.customer_id, ids[start : start + size]),
                )
                .values(outcome=RecipientOutcome.DECIDED.value, decided_at=now)
                # the recipients were read as rows, not objects: there is nothing in the session to sync
                .execution_options(synchronize_session=False)
            )
    _analyse_if_grown(session, before=broadcast.decided_count, after=broadcast.decided_count + len(pending))
    broadcast.decided_count += len(pending)
    broadcast.updated_at = now
    return len(pending)


def _analyse_if_grown(session: Session, *, before: int, after: int) -> None:
    """A large broadcast is a bulk load of the outbox: past 5k, 20k, 80k… decided messages, PostgreSQL's
    statistics of the tables it writes are refreshed (in this chunk's transaction), as after any bulk
    load. With statistics taken while they were small (or none), the planner reads the caps' messages
    and the idempotency keys by scanning, each chunk slower than the one before; autovacuum catches up
    only a minute or more later."""
    threshold = STATISTICS_AFTER
    while threshold <= after:
        if before < threshold and is_postgres(session):
            for table in ("reach_message", "reach_contact"):
                session.execute(text(f"ANALYZE {table}"))
            return
        threshold *= 4


def finish_if_done(
    session: Session, *, workspace_id: int, broadcast_id: int, now: datetime | None = None
) -> bool:
    """Mark a sending broadcast sent once every customer is decided and none of its messages waits any
    more (queued, deferred, held): "sent" means nothing of it is left to go."""
    now = now or utcnow()
    broadcast = _get(session, workspace_id=workspace_id, broadcast_id=broadcast_id, lock=True)
    if broadcast.status != BroadcastStatus.SENDING:
        return False
    if _count(session, broadcast, RecipientOutcome.PENDING):
        return False
    counts = reach.accounting(session, workspace_id=workspace_id, source=SOURCE, source_ref=str(broadcast.id))
    if any(counts.by_status.get(s, 0) for s in ("queued", "deferred", "held")):
        return False
    broadcast.status = BroadcastStatus.SENT.value
    broadcast.finished_at = now
    broadcast.updated_at = now
    _record(session, broadcast, action="sent", user_id=None, by_status=counts.by_status)
    return True


def _count(session: Session, broadcast: Broadcast, outcome: RecipientOutcome) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                BroadcastRecipient.broadcast_id == broadcast.id, BroadcastRecipient.outcome == outcome.value
            )
        )
        or 0
    )


def pause_broadcast(
    session: Session, *, actor: Actor, broadcast_id: int, now: datetime | None = None
) -> Broadcast:
    """Stop a scheduled or sending broadcast: no further customer is decided and none of its waiting
    messages is claimed by a worker (a message a worker is sending at this moment completes)."""
    actor.require(Permission.WRITE)
    now = now or utcnow()
    broadcast = _get(session, workspace_id=actor.workspace_id, broadcast_id=broadcast_id, lock=True)
    if broadcast.status == BroadcastStatus.PAUSED:
        return broadcast
    if broadcast.status not in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING):
        raise Conflict(
            f"broadcast {broadcast.id} is {broadcast.status}; only a scheduled or sending one pauses",
            where="status",
        )
    held = reach.hold(
        session, workspace_id=actor.workspace_id, source=SOURCE, source_ref=str(broadcast.id), now=now
    )
    broadcast.status = BroadcastStatus.PAUSED.value
    broadcast.paused_at = now
    broadcast.updated_at = now
    _record(session, broadcast, action="pause", user_id=actor.user_id, held=held)
    return broadcast


def resume_broadcast(
    session: Session, *, actor: Actor, broadcast_id: int, now: datetime | None = None
) -> Broadcast:
    """Continue a paused broadcast where it stopped: its held messages go again and the customers not
    decided yet are decided (a broadcast paused before it started is scheduled again)."""
    actor.require(Permission.WRITE)
    now = now or utcnow()
    broadcast = _get(session, workspace_id=actor.workspace_id, broadcast_id=broadcast_id, lock=True)
    if broadcast.status != BroadcastStatus.PAUSED:
        raise Conflict(f"broadcast {broadcast.id} is {broadcast.status}, not paused", where="status")
    released = reach.release(
        session, workspace_id=actor.workspace_id, source=SOURCE, source_ref=str(broadcast.id), now=now
    )
    started = broadcast.started_at is not None
    broadcast.status = (BroadcastStatus.SENDING if started else BroadcastStatus.SCHEDULED).value
    broadcast.paused_at = None
    broadcast.updated_at = now
    _record(session, broadcast, action="resume", user_id=actor.user_id, released=released)
    return broadcast


def cancel_broadcast(
    session: Session, *, actor: Actor, broadcast_id: int, now: datetime | None = None
) -> Broadcast:
    """End a broadcast: every message of it that has not left is suppressed (reason `cancelled`) and the
    customers not decided yet are recorded as cancelled, so the counts still add up to the audience."""
    actor.require(Permission.WRITE)
    now = now or utcnow()
    broadcast = _get(session, workspace_id=actor.workspace_id, broadcast_id=broadcast_id, lock=True)
    if broadcast.status == BroadcastStatus.CANCELLED:
        return broadcast
    if broadcast.status == BroadcastStatus.SENT:
        raise Conflict(f"broadcast {broadcast.id} is sent already; nothing is left to cancel", where="status")
    cancelled = reach.cancel(
        session, workspace_id=actor.workspace_id, source=SOURCE, source_ref=str(broadcast.id), now=now
    )
    undecided = session.execute(
        update(BroadcastRecipient)
        .where(
            BroadcastRecipient.broadcast_id == broadcast.id,
            BroadcastRecipient.outcome == RecipientOutcome.PENDING.value,
        )
        .values(outcome=RecipientOutcome.CANCELLED.value, decided_at=now)
    )
    broadcast.status = BroadcastStatus.CANCELLED.value
    broadcast.cancelled_at = now
    broadcast.finished_at = now
    broadcast.updated_at = now
    _record(
        session,
        broadcast,
        action="cancel",
        user_id=actor.user_id,
        messages_cancelled=cancelled,
        undecided_cancelled=int(undecided.rowcount or 0),  # type: ignore[attr-defined]
    )
    return broadcast


def reapply_stops(session: Session, *, now: datetime | None = None) -> int:
    """Hold again what a paused broadcast has waiting, and cancel again what a recently cancelled one
    has: a message a worker was sending when the broadcast stopped may come back as a retry."""
    now = now or utcnow()
    changed = 0
    for broadcast in session.scalars(
        select(Broadcast).where(
            ((Broadcast.status == BroadcastStatus.PAUSED.value) & (Broadcast.paused_at >= now - REAPPLY))
            | (
                (Broadcast.status == BroadcastStatus.CANCELLED.value)
                & (Broadcast.cancelled_at >= now - REAPPLY)
            )
        )
    ):
        verb = reach.hold if broadcast.status == BroadcastStatus.PAUSED else reach.cancel
        changed += verb(
            session, workspace_id=broadcast.workspace_id, source=SOURCE, source_ref=str(broadcast.id), now=now
        )
    return changed


# --- progress and results -----------------------------------------------------------------------


OUTCOMES = ("awaiting_decision", "holdout", "cancelled_before_decision")
MESSAGE_STATUSES = ("queued", "deferred", "held", "sent", "delivered", "failed", "suppressed")


@dataclass
class Progress:
    """Where every customer of a broadcast's audience stands: not decided yet, in the holdout, cancelled
    before being decided, or the status of their message; the counts add up to `audience`."""

    broadcast_id: int
    status: str
    audience: int
    counts: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)
    by_variant: dict[str, int] = field(default_factory=dict)


def progress(session: Session, *, actor: Actor, broadcast_id: int) -> Progress:
    actor.require(Permission.READ)
    broadcast = _get(session, workspace_id=actor.workspace_id, broadcast_id=broadcast_id)
    outcomes: dict[str, int] = {}
    variants: dict[str, int] = {}
    for outcome, variant, count in session.execute(
        select(BroadcastRecipient.outcome, BroadcastRecipient.variant, func.count())
        .where(BroadcastRecipient.broadcast_id == broadcast.id)
        .group_by(BroadcastRecipient.outcome, BroadcastRecipient.variant)
    ):
        outcomes[outcome] = outcomes.get(outcome, 0) + count
        variants[variant or "message"] = variants.get(variant or "message", 0) + count
    accounting = reach.accounting(
        session, workspace_id=actor.workspace_id, source=SOURCE, source_ref=str(broadcast.id)
    )
    counts = {
        "awaiting_decision": outcomes.get(RecipientOutcome.PENDING.value, 0),
        "holdout": outcomes.get(RecipientOutcome.HOLDOUT.value, 0),
        "cancelled_before_decision": outcomes.get(RecipientOutcome.CANCELLED.value, 0),
    }
    for status in MESSAGE_STATUSES:
        counts[status] = accounting.by_status.get(status, 0)
    return Progress(
        broadcast_id=broadcast.id,
        status=broadcast.status,
        audience=broadcast.audience_size,
        counts=counts,
        by_reason=dict(sorted(accounting.by_reason.items())),
        by_variant=dict(sorted(variants.items())),
    )


@dataclass
class GroupResult:
    """One group of the audience (a variant, "message" without variants, or the holdout)."""

    group: str
    customers: int
    delivered: int
    converted: int
    revenue_cents: int

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.customers if self.customers else None


@dataclass
class Results:
    broadcast_id: int
    started_at: datetime | None
    window_days: int
    groups: list[GroupResult]
    clicked: int | None  # None: no tracked links recorded clicks for this broadcast
    clicks_note: str
    experiment: experiments.ExperimentResults | None


def results(session: Session, *, actor: Actor, broadcast_id: int) -> Results:
    """Per group: customers, delivered messages (sent or delivered), customers who bought within the
    conversion window after the start, and their net revenue; the holdout as the baseline. With the
    broadcast's experiment, its analysis (each variant against the control and the holdout)."""
    actor.require(Permission.READ)
    broadcast = _get(session, workspace_id=actor.workspace_id, broadcast_id=broadcast_id)
    groups: list[GroupResult] = []
    analysis = None
    if broadcast.started_at is not None:
        start = broadcast.started_at
        end = start + timedelta(days=broadcast.conversion_window_days)
        recipient = (
            select(BroadcastRecipient.customer_id, BroadcastRecipient.variant)
            .where(
                BroadcastRecipient.broadcast_id == broadcast.id,
                BroadcastRecipient.outcome != RecipientOutcome.CANCELLED.value,
            )
            .subquery()
        )
        bought = orders.purchases(workspace_id=actor.workspace_id, start=start, end=end).subquery()
        per_customer = (
            select(
                recipient.c.customer_id,
                recipient.c.variant,
                func.count(bought.c.order_id).label("orders"),
                func.coalesce(func.sum(bought.c.net_cents), 0).label("cents"),
            )
            .select_from(recipient)
            .outerjoin(bought, bought.c.customer_id == recipient.c.customer_id)
            .group_by(recipient.c.customer_id, recipient.c.variant)
            .subquery()
        )
        delivered = reach.delivered_by_step(
            session, workspace_id=actor.workspace_id, source=SOURCE, source_ref=str(broadcast.id)
        )
        rows = session.execute(
            select(
                per_customer.c.variant,
                func.count(),
                func.sum(case((per_customer.c.orders > 0, 1), else_=0)),
                func.sum(per_customer.c.cents),
            ).group_by(per_customer.c.variant)
        )
        for variant, customers_n, converted, cents in rows:
            groups.append(
                GroupResult(
                    group=variant or "message",
                    customers=int(customers_n),
                    delivered=delivered.get(variant, 0) if variant != HOLDOUT else 0,
                    converted=int(converted or 0),
                    revenue_cents=int(cents or 0),
                )
            )
        groups.sort(key=lambda g: (g.group == HOLDOUT, g.group))
        if broadcast.experiment_id is not None:
            analysis = experiments.analyse(session, actor=actor, experiment_id=broadcast.experiment_id)
    tracked = content_service.clicks(
        session, workspace_id=actor.workspace_id, source=SOURCE, source_ref=str(broadcast.id)
    )
    return Results(
        broadcast_id=broadcast.id,
        started_at=broadcast.started_at,
        window_days=broadcast.conversion_window_days,
        groups=groups,
        clicked=tracked.clicking_customers if tracked.links else None,
        clicks_note=""
        if tracked.links
        else 'the content has no tracked links ({{ link("https://…") }}), so clicks are not counted',
        experiment=analysis,
    )
