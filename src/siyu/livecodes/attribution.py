"""Adds and deletions reported by WeCom, attributed to the live code whose `state` the contact carried.

`record_add` is the one call the WeCom callback (add_external_contact) makes; `record_delete` the one
for del_external_contact / del_follow_user. Re-attribution rule (docs/livecodes.md): the first add wins
for acquisition — an external user id that names nobody in the pool yet creates a customer whose first
channel is the code's channel, counted as a new add; an add by a customer already in the pool (through
this or any other code) is recorded and tagged but counted as a returning add, never as a new one. A
retried callback (same code, external user id and staff member) changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.core import audit, domain_events
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import identity, rollups
from siyu.customers import service as customers
from siyu.customers.models import IdentityKind
from siyu.events import bulk as events
from siyu.livecodes import service
from siyu.livecodes.models import LiveCode, LiveCodeAdd
from siyu.tags import service as tags
from siyu.tags.models import TagSource

_WECOM_ID = re.compile(r"^[A-Za-z0-9_@.\-]{1,64}$")
EVENT_ADDED = "livecode.added"
SOURCE = "live_code"


class WelcomeStatus:
    NONE = "none"  # the code has no welcome message
    PENDING = "pending"  # queued on the add row: the send gateway sends it within WeCom's 20 s window
    SENT = "sent"  # the gateway's message was sent
    FAILED = "failed"  # the gateway's message failed or was suppressed (the reason is in the audit log)


@dataclass(frozen=True)
class AddResult:
    add: LiveCodeAdd
    created: bool  # False: a retry of an add recorded before


def _check_wecom_id(value: str, *, where: str) -> str:
    value = (value or "").strip()
    if not _WECOM_ID.match(value):
        raise ValidationFailed(
            f"{value[:80]!r} is not a WeCom id", where=where, hint="1–64 letters, digits, _ - . @"
        )
    return value


def _acting_for(session: Session, code: LiveCode) -> Actor:
    """Who the code's automatic writes (tags, owner) act as: its creator with an operator's rights,
    or the workspace's owner when it has no creator; `via` marks the writes as the code's."""
    if code.created_by_user_id is None:
        owner = auth.command_line_actor(session, workspace_id=code.workspace_id)
        return Actor(owner.user_id, code.workspace_id, Role.OPERATOR, "live code", via=SOURCE)
    return Actor(code.created_by_user_id, code.workspace_id, Role.OPERATOR, "live code", via=SOURCE)


def _resolve_customer(
    session: Session, *, code: LiveCode, external_userid: str, at: datetime
) -> tuple[int, bool]:
    keys = pl.DataFrame(
        {
            "kind": [str(IdentityKind.WECOM_EXTERNAL_USERID)],
            "value": [external_userid],
            "first_at": [at],
            "first_channel_id": [code.channel_id],
        },
        schema={
            "kind": pl.Utf8,
            "value": pl.Utf8,
            "first_at": pl.Datetime("us", "UTC"),
            "first_channel_id": pl.Int64,
        },
    )
    ids, created = identity.resolve_single_keys(
        session, workspace_id=code.workspace_id, keys=keys, source=SOURCE
    )
    customer_id = int(ids[0])
    if created:
        rollups.refresh_rollups(session, workspace_id=code.workspace_id, customer_ids=created)
    return customer_id, bool(created)


def _record_event(session: Session, *, add: LiveCodeAdd) -> None:
    properties = {
        "live_code_id": add.live_code_id,
        "staff_user_id": add.staff_user_id,
        "new_customer": add.is_new_customer,
    }
    events.insert_events(
        session,
        workspace_id=add.workspace_id,
        events=pl.DataFrame(
            {
                "customer_id": [add.customer_id],
                "type": [EVENT_ADDED],
                "occurred_at": [add.added_at],
                "properties": [json.dumps(properties, sort_keys=True)],
                "source": [SOURCE],
                "dedupe_key": [hashlib.sha256(f"x\x1flivecode-add:{add.id}".encode()).hexdigest()],
            },
            schema={
                "customer_id": pl.Int64,
                "type": pl.Utf8,
                "occurred_at": pl.Datetime("us", "UTC"),
                "properties": pl.Utf8,
                "source": pl.Utf8,
                "dedupe_key": pl.Utf8,
            },
        ),
    )


def record_add(
    session: Session,
    *,
    workspace_id: int,
    state: str,
    external_userid: str,
    staff_userid: str,
    occurred_at: datetime | None = None,
    staff_user_id: int | None = None,
) -> AddResult:
    """Attribute a WeCom add to the code of `state` and to the staff member `staff_userid` (their WeCom
    user id; `staff_user_id` names the siyu user when the caller knows it, else it is looked up).

    Resolves or creates the customer by `wecom_external_userid`, applies the code's auto tags (source
    live_code), queues its welcome message on the add row, records a `livecode.added` event and domain
    event and an audit row — all in the caller's transaction. NotFound for a state that names no code
    of the workspace (the callback of another tool's contact way: the caller may ignore it).
    """
    external_userid = _check_wecom_id(external_userid, where="external_userid")
    staff_userid = _check_wecom_id(staff_userid, where="staff_userid")
    if not state or len(state) > 30:
        raise NotFound("no live code has this state", where="state")
    code = service.code_by_state(session, workspace_id=workspace_id, state=state)
    if code is None:
        raise NotFound("no live code has this state", where="state")
    # one add of a code at a time: a retry racing the first delivery waits here and then finds it
    service.get_live_code(session, workspace_id=workspace_id, live_code_id=code.id, lock=True)
    existing = session.scalar(
        select(LiveCodeAdd).where(
            LiveCodeAdd.live_code_id == code.id,
            LiveCodeAdd.external_userid == external_userid,
            LiveCodeAdd.staff_wecom_userid == staff_userid,
        )
    )
    if existing is not None:
        return AddResult(existing, created=False)
    at = occurred_at or utcnow()
    if staff_user_id is None:
        staff_user_id = auth.member_id_by_wecom_userid(
            session, workspace_id=workspace_id, wecom_userid=staff_userid
        )
    customer_id, is_new = _resolve_customer(session, code=code, external_userid=external_userid, at=at)
    add = LiveCodeAdd(
        workspace_id=workspace_id,
        live_code_id=code.id,
        customer_id=customer_id,
        staff_user_id=staff_user_id,
        staff_wecom_userid=staff_userid,
        external_userid=external_userid,
        is_new_customer=is_new,
        added_at=at,
        welcome_text=code.welcome_text,
        # the seam of the send gateway: wecom's worker task enqueues it there and settles it from the outcome
        welcome_status=WelcomeStatus.PENDING if code.welcome_text else WelcomeStatus.NONE,
        created_at=utcnow(),
    )
    session.add(add)
    session.flush()
    actor = _acting_for(session, code)
    for tag_id in code.auto_tag_ids:
        try:
            tags.tag_customer(
                session,
                actor=actor,
                customer_id=customer_id,
                tag_id=tag_id,
                source=TagSource.LIVE_CODE,
                source_ref=f"live_code:{code.id}",
            )
        except NotFound:
            continue  # a tag deleted since the code was set up: the other tags still apply
    if is_new and staff_user_id is not None:
        # a new customer belongs to the staff member they added, as in WeCom
        customers.assign_owner(session, actor=actor, customer_id=customer_id, owner_user_id=staff_user_id)
    _record_event(session, add=add)
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type=DomainEventType.LIVECODE_ADDED,
        customer_id=customer_id,
        payload={
            "live_code_id": code.id,
            "add_id": add.id,
            "staff_user_id": staff_user_id,
            "new_customer": is_new,
        },
        occurred_at=at,
    )
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=None,
        action="livecode.add",
        target_type="customer",
        target_id=customer_id,
        detail={"live_code_id": code.id, "staff_userid": staff_userid, "new_customer": is_new},
    )
    return AddResult(add, created=True)


def record_delete(
    session: Session,
    *,
    workspace_id: int,
    external_userid: str,
    staff_userid: str,
    occurred_at: datetime | None = None,
) -> LiveCodeAdd | None:
    """A customer deleted the staff member (or was deleted by them): the latest add of that pair is
    marked deleted and counts as a deletion of its code on that day. None (nothing written) when no
    live code brought that pair together or the deletion is recorded already (a retry)."""
    external_userid = _check_wecom_id(external_userid, where="external_userid")
    staff_userid = _check_wecom_id(staff_userid, where="staff_userid")
    add = session.scalar(
        select(LiveCodeAdd)
        .where(
            LiveCodeAdd.workspace_id == workspace_id,
            LiveCodeAdd.external_userid == external_userid,
            LiveCodeAdd.staff_wecom_userid == staff_userid,
        )
        .order_by(LiveCodeAdd.added_at.desc(), LiveCodeAdd.id.desc())
        .limit(1)
        .with_for_update()
    )
    if add is None or add.deleted_at is not None:
        return None
    add.deleted_at = occurred_at or utcnow()
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type=DomainEventType.LIVECODE_DELETED,
        customer_id=add.customer_id,
        payload={"live_code_id": add.live_code_id, "add_id": add.id, "staff_user_id": add.staff_user_id},
        occurred_at=add.deleted_at,
    )
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=None,
        action="livecode.delete",
        target_type="customer",
        target_id=add.customer_id,
        detail={"live_code_id": add.live_code_id, "staff_userid": staff_userid},
    )
    return add


def adds_of(session: Session, *, workspace_id: int, live_code_id: int, limit: int = 50) -> list[LiveCodeAdd]:
    """The code's latest adds, newest first."""
    return list(
        session.scalars(
            select(LiveCodeAdd)
            .where(LiveCodeAdd.workspace_id == workspace_id, LiveCodeAdd.live_code_id == live_code_id)
            .order_by(LiveCodeAdd.added_at.desc(), LiveCodeAdd.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class PendingWelcome:
    """A live code's welcome message waiting to go out to the friend just added."""

    add_id: int
    workspace_id: int
    live_code_id: int
    customer_id: int
    staff_wecom_userid: str
    external_userid: str
    text: str
    added_at: datetime


def pending_welcomes(
    session: Session, *, workspace_id: int | None = None, limit: int = 500
) -> list[PendingWelcome]:
    """Welcome messages not settled yet (`settle_welcome`), oldest first, of every workspace or one. The
    send gateway decides and sends them; an add stays pending until its message's outcome is known."""
    query = (
        select(LiveCodeAdd)
        .where(LiveCodeAdd.welcome_status == WelcomeStatus.PENDING)
        .order_by(LiveCodeAdd.added_at, LiveCodeAdd.id)
        .limit(limit)
    )
    if workspace_id is not None:
        query = query.where(LiveCodeAdd.workspace_id == workspace_id)
    return [
        PendingWelcome(
            add_id=a.id,
            workspace_id=a.workspace_id,
            live_code_id=a.live_code_id,
            customer_id=a.customer_id,
            staff_wecom_userid=a.staff_wecom_userid,
            external_userid=a.external_userid,
            text=a.welcome_text,
            added_at=a.added_at,
        )
        for a in session.scalars(query)
    ]


def settle_welcome(session: Session, *, workspace_id: int, add_id: int, sent: bool, reason: str = "") -> bool:
    """Record how a pending welcome message ended (sent, or failed with `reason`, audited); False when it
    was settled already (another worker got there first)."""
    result = session.execute(
        update(LiveCodeAdd)
        .where(
            LiveCodeAdd.workspace_id == workspace_id,
            LiveCodeAdd.id == add_id,
            LiveCodeAdd.welcome_status == WelcomeStatus.PENDING,
        )
        .values(welcome_status=WelcomeStatus.SENT if sent else WelcomeStatus.FAILED)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    if not sent:
        audit.record(
            session,
            workspace_id=workspace_id,
            actor_user_id=None,
            action="livecode.welcome_failed",
            target_type="live_code_add",
            target_id=add_id,
            detail={"reason": reason[:500]},
        )
    return True
