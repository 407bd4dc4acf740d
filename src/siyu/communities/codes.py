"""Group live codes (群活码): one QR and landing URL that hands each visitor the join QR of the first of
its groups still open, moving on when a group reaches the code's cap (WeCom lets at most 200 people
join a group by QR) or its QR image expired; every hand-out is counted per code and group."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.communities import service
from siyu.communities.models import GroupCode, GroupCodeGroup, GroupCodeJoin, GroupQr
from siyu.communities.schemas import CodeGroupOut, GroupCodeIn, GroupCodeOut, HandOut
from siyu.core import audit
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow

DEFAULT_CAP = 200  # WeCom: a group takes at most 200 members through its QR code
MAX_GROUPS = 100
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")
NOT_FOUND_MESSAGE = "this group code does not exist or is no longer in use"


def landing_path(code: GroupCode) -> str:
    return f"/g/{code.token}"


def landing_url(base_url: str, code: GroupCode) -> str:
    return base_url.rstrip("/") + landing_path(code)


def create_code(session: Session, *, actor: Actor, spec: GroupCodeIn) -> GroupCode:
    """A group code over the given groups, handed out in that order."""
    actor.require(Permission.WRITE)
    name = spec.name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("give the group code a name of 1–200 characters", where="name")
    if not 1 <= spec.cap <= DEFAULT_CAP:
        raise ValidationFailed(
            f"a cap of {spec.cap}", where="cap", hint=f"1–{DEFAULT_CAP} (WeCom's limit of joins by QR)"
        )
    chat_ids = list(dict.fromkeys(c.strip() for c in spec.chat_ids if c.strip()))
    if not chat_ids or len(chat_ids) > MAX_GROUPS:
        raise ValidationFailed(
            f"{len(chat_ids)} groups", where="chat_ids", hint=f"pick 1–{MAX_GROUPS} customer groups"
        )
    for position, chat_id in enumerate(chat_ids):
        try:
            service.get_group(session, workspace_id=actor.workspace_id, chat_id=chat_id)
        except NotFound:
            raise ValidationFailed(
                f"no customer group {chat_id[:64]!r} in this workspace",
                where=f"chat_ids[{position}]",
                hint="pick groups synced from WeCom",
            ) from None
    code = GroupCode(
        workspace_id=actor.workspace_id,
        token=secrets.token_urlsafe(16),
        name=name,
        cap=spec.cap,
        is_active=True,
        created_by_user_id=actor.user_id,
        created_at=utcnow(),
    )
    session.add(code)
    session.flush()
    session.add_all(
        GroupCodeGroup(
            workspace_id=actor.workspace_id, code_id=code.id, chat_id=chat_id, position=i, handed_out=0
        )
        for i, chat_id in enumerate(chat_ids)
    )
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="community.code_created",
        target_type="community_group_code",
        target_id=code.id,
        detail={"name": name, "groups": chat_ids, "cap": spec.cap},
    )
    return code


def set_active(session: Session, *, actor: Actor, code_id: int, active: bool) -> GroupCode:
    actor.require(Permission.WRITE)
    code = get_code(session, workspace_id=actor.workspace_id, code_id=code_id)
    if code.is_active != active:
        code.is_active = active
        audit.record(
            session,
            workspace_id=actor.workspace_id,
            actor_user_id=actor.user_id,
            action="community.code_enabled" if active else "community.code_disabled",
            target_type="community_group_code",
            target_id=code.id,
        )
    return code


def get_code(session: Session, *, workspace_id: int, code_id: int, lock: bool = False) -> GroupCode:
    query = select(GroupCode).where(GroupCode.id == code_id, GroupCode.workspace_id == workspace_id)
    code = session.scalar(query.with_for_update() if lock else query)
    if code is None:
        raise NotFound(f"no group code {code_id} in this workspace", where="code_id")
    return code


def list_codes(session: Session, *, workspace_id: int) -> list[GroupCode]:
    return list(
        session.scalars(
            select(GroupCode).where(GroupCode.workspace_id == workspace_id).order_by(GroupCode.id.desc())
        )
    )


def _groups(session: Session, *, code_id: int) -> list[GroupCodeGroup]:
    return list(
        session.scalars(
            select(GroupCodeGroup).where(GroupCodeGroup.code_id == code_id).order_by(GroupCodeGroup.position)
        )
    )


@dataclass(frozen=True)
class _Open:
    row: GroupCodeGroup
    qr: GroupQr | None
    members: int
    name: str
    dismissed: bool


def _state(session: Session, code: GroupCode) -> list[_Open]:
    found = []
    for row in _groups(session, code_id=code.id):
        group = service.get_group(session, workspace_id=code.workspace_id, chat_id=row.chat_id)
        found.append(
            _Open(
                row=row,
                qr=service.qr_of(session, workspace_id=code.workspace_id, chat_id=row.chat_id),
                members=group.member_count,
                name=group.name,
                dismissed=group.dismissed_at is not None,
            )
        )
    return found


def _open_now(code: GroupCode, entry: _Open, now: datetime) -> bool:
    """Open: not dismissed, a QR image not expired, fewer hand-outs than the cap and fewer members."""
    qr_ok = not entry.dismissed and entry.qr is not None and entry.qr.expires_at > now
    return qr_ok and entry.row.handed_out < code.cap and entry.members < code.cap


def hand_out(session: Session, *, token: str) -> tuple[HandOut, GroupQr | None]:
    """A visit of the landing page: the first open group of the code, counted for it (under a row
    lock on the code, so concurrent visitors never overfill a group). Unknown or inactive codes are
    NotFound with one message, whatever the reason."""
    if not TOKEN_PATTERN.match(token or ""):
        raise NotFound(NOT_FOUND_MESSAGE, where="token")
    code = session.scalar(select(GroupCode).where(GroupCode.token == token).with_for_update())
    if code is None or not code.is_active:
        raise NotFound(NOT_FOUND_MESSAGE, where="token")
    now = utcnow()
    chosen = next((entry for entry in _state(session, code) if _open_now(code, entry, now)), None)
    session.add(
        GroupCodeJoin(
            workspace_id=code.workspace_id,
            code_id=code.id,
            chat_id=chosen.row.chat_id if chosen else None,
            joined_at=now,
        )
    )
    if chosen is None:
        session.flush()
        return HandOut(code_id=code.id, chat_id=None, group_name=None, qr_id=None), None
    chosen.row.handed_out += 1
    session.flush()
    assert chosen.qr is not None
    return (
        HandOut(code_id=code.id, chat_id=chosen.row.chat_id, group_name=chosen.name, qr_id=chosen.qr.id),
        chosen.qr,
    )


def describe(session: Session, *, code: GroupCode) -> GroupCodeOut:
    """A code with its groups in hand-out order, how many were sent to each, and which are open."""
    now = utcnow()
    entries = _state(session, code)
    turned_away = session.scalar(
        select(func.count()).where(GroupCodeJoin.code_id == code.id, GroupCodeJoin.chat_id.is_(None))
    )
    return GroupCodeOut(
        id=code.id,
        name=code.name,
        token=code.token,
        landing_path=landing_path(code),
        cap=code.cap,
        is_active=code.is_active,
        created_at=code.created_at,
        groups=[
            CodeGroupOut(
                chat_id=e.row.chat_id,
                name=e.name,
                position=e.row.position,
                handed_out=e.row.handed_out,
                members=e.members,
                qr_expires_at=e.qr.expires_at if e.qr else None,
                open=_open_now(code, e, now),
            )
            for e in entries
        ],
        handed_out=sum(e.row.handed_out for e in entries),
        turned_away=turned_away or 0,
    )
