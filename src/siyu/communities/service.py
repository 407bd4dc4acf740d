"""Community verbs: sync the customer groups from WeCom, read them with their members matched to the
pool, tag them, and keep each group's join QR image with its expiry.

Group live codes are in codes.py, the figures in stats.py. WeCom's data is reached through
`siyu.wecom.service`; every verb lands in the caller's transaction and never commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.communities.models import GroupQr, GroupTag
from siyu.communities.schemas import Member
from siyu.core import audit
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers.models import IdentityKind
from siyu.customers.service import facts as customer_facts
from siyu.wecom import service as wecom
from siyu.wecom.client import WecomClient
from siyu.wecom.service.groups import EXTERNAL_MEMBER, GroupSync

if TYPE_CHECKING:
    from siyu.wecom.models import WecomGroupChat

QR_LIFETIME = timedelta(days=7)  # WeCom's group QR images expire 7 days after they are made
MAX_QR_BYTES = 2 * 1024 * 1024
MAX_TAG = 50
_IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def sync(session: Session, *, actor: Actor, client: WecomClient | None = None) -> GroupSync:
    """Fetch every customer group from WeCom with its members; joins and leaves since the last sync
    are recorded from the difference of the member lists."""
    actor.require(Permission.WRITE)
    result = wecom.sync_groups(session, workspace_id=actor.workspace_id, client=client)
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="community.sync",
        target_type="wecom_group_chat",
        target_id=None,
        detail={"seen": result.seen, "created": result.created},
    )
    return result


def list_groups(session: Session, *, workspace_id: int) -> list[WecomGroupChat]:
    return wecom.list_groups(session, workspace_id=workspace_id)


def get_group(session: Session, *, workspace_id: int, chat_id: str) -> WecomGroupChat:
    group = wecom.get_group(session, workspace_id=workspace_id, chat_id=chat_id)
    if group is None:
        raise NotFound(
            f"no customer group {chat_id[:64]!r} in this workspace",
            where="chat_id",
            hint="sync the groups from WeCom first (siyu community sync)",
        )
    return group


def matched_members(*, workspace_id: int, chat_id: str | None = None) -> Any:
    """A selectable of the groups' present members with the customer each external member is in the
    pool (`customer_id`, none when unknown): matched by external_userid, else by unionid."""
    members = wecom.group_members(workspace_id=workspace_id, chat_id=chat_id).subquery()
    by_external = customer_facts.identities(
        workspace_id=workspace_id, kinds=(IdentityKind.WECOM_EXTERNAL_USERID.value,)
    ).subquery()
    by_unionid = customer_facts.identities(
        workspace_id=workspace_id, kinds=(IdentityKind.WECHAT_UNIONID.value,)
    ).subquery()
    external = members.c.member_type == EXTERNAL_MEMBER
    return (
        select(
            members.c.chat_id,
            members.c.member_id,
            members.c.member_type,
            members.c.joined_at,
            members.c.join_scene,
            func.coalesce(by_external.c.customer_id, by_unionid.c.customer_id).label("customer_id"),
        )
        .select_from(members)
        .outerjoin(by_external, and_(external, by_external.c.value == members.c.member_id))
        .outerjoin(
            by_unionid,
            and_(external, members.c.unionid.is_not(None), by_unionid.c.value == members.c.unionid),
        )
    )


def members_of(session: Session, *, workspace_id: int, chat_id: str) -> list[Member]:
    """A group's present members, staff first, then by when they joined."""
    get_group(session, workspace_id=workspace_id, chat_id=chat_id)
    rows = matched_members(workspace_id=workspace_id, chat_id=chat_id).subquery()
    return [
        Member(
            member_id=r.member_id,
            member_type=r.member_type,
            joined_at=r.joined_at,
            join_scene=r.join_scene,
            customer_id=r.customer_id,
        )
        for r in session.execute(
            select(rows).order_by(rows.c.member_type, rows.c.joined_at, rows.c.member_id)
        )
    ]


def groups_of_customer(session: Session, *, workspace_id: int, customer_id: int) -> list[str]:
    """The chat ids of the groups a customer is a member of now."""
    rows = matched_members(workspace_id=workspace_id).subquery()
    return list(session.scalars(select(rows.c.chat_id).where(rows.c.customer_id == customer_id).distinct()))


# --- tags ------------------------------------------------------------------------------------------


def _tag_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_TAG:
        raise ValidationFailed(
            f"a group tag needs 1–{MAX_TAG} characters, not {len(cleaned)}", where="name", hint="e.g. 门店群"
        )
    return cleaned


def add_tag(session: Session, *, actor: Actor, chat_id: str, name: str) -> GroupTag:
    """Tag a group (once: tagging it again with the same name changes nothing)."""
    actor.require(Permission.WRITE)
    get_group(session, workspace_id=actor.workspace_id, chat_id=chat_id)
    cleaned = _tag_name(name)
    row = session.scalar(
        select(GroupTag).where(
            GroupTag.workspace_id == actor.workspace_id, GroupTag.chat_id == chat_id, GroupTag.name == cleaned
        )
    )
    if row is not None:
        return row
    row = GroupTag(workspace_id=actor.workspace_id, chat_id=chat_id, name=cleaned, created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="community.tag_added",
        target_type="wecom_group_chat",
        target_id=None,
        detail={"chat_id": chat_id, "tag": cleaned},
    )
    return row


def remove_tag(session: Session, *, actor: Actor, chat_id: str, name: str) -> None:
    actor.require(Permission.WRITE)
    get_group(session, workspace_id=actor.workspace_id, chat_id=chat_id)
    removed = session.execute(
        delete(GroupTag).where(
            GroupTag.workspace_id == actor.workspace_id,
            GroupTag.chat_id == chat_id,
            GroupTag.name == " ".join(name.split()),
        )
    ).rowcount  # type: ignore[attr-defined]
    if removed:
        audit.record(
            session,
            workspace_id=actor.workspace_id,
            actor_user_id=actor.user_id,
            action="community.tag_removed",
            target_type="wecom_group_chat",
            target_id=None,
            detail={"chat_id": chat_id, "tag": name},
        )


def tags_by_group(session: Session, *, workspace_id: int) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for chat_id, name in session.execute(
        select(GroupTag.chat_id, GroupTag.name)
        .where(GroupTag.workspace_id == workspace_id)
        .order_by(GroupTag.name)
    ):
        found.setdefault(chat_id, []).append(name)
    return found


def groups_tagged(session: Session, *, workspace_id: int, name: str) -> list[str]:
    return list(
        session.scalars(
            select(GroupTag.chat_id).where(GroupTag.workspace_id == workspace_id, GroupTag.name == name)
        )
    )


# --- join QR images --------------------------------------------------------------------------------


def save_qr(
    session: Session,
    *,
    actor: Actor,
    chat_id: str,
    image: bytes,
    expires_at: datetime | None = None,
) -> GroupQr:
    """Keep a group's join QR image (PNG or JPEG, as saved from WeCom), replacing the one before.

    `expires_at` defaults to 7 days from now, WeCom's lifetime of a group QR; a date in the past or
    more than 7 days ahead is refused.
    """
    actor.require(Permission.WRITE)
    get_group(session, workspace_id=actor.workspace_id, chat_id=chat_id)
    if not image or len(image) > MAX_QR_BYTES:
        raise ValidationFailed(
            f"a QR image of {len(image)} bytes",
            where="image",
            hint=f"a PNG or JPEG of 1 byte to {MAX_QR_BYTES} bytes",
        )
    content_type = next((kind for magic, kind in _IMAGE_TYPES.items() if image.startswith(magic)), None)
    if content_type is None:
        raise ValidationFailed(
            "the QR image is neither PNG nor JPEG",
            where="image",
            hint="save the group QR from WeCom as an image",
        )
    now = utcnow()
    expires_at = expires_at or now + QR_LIFETIME
    if expires_at.tzinfo is None:
        raise ValidationFailed(
            "the expiry needs a time zone", where="expires_at", hint="e.g. 2026-12-08T12:00:00+08:00"
        )
    if not now < expires_at <= now + QR_LIFETIME + timedelta(minutes=5):
        raise ValidationFailed(
            f"a QR expiring at {expires_at.isoformat()}",
            where="expires_at",
            hint="WeCom's group QR images live 7 days: give a time in the next 7 days, or none for 7 days from now",
        )
    row = session.scalar(
        select(GroupQr).where(GroupQr.workspace_id == actor.workspace_id, GroupQr.chat_id == chat_id)
    )
    if row is None:
        row = GroupQr(workspace_id=actor.workspace_id, chat_id=chat_id)
        session.add(row)
    row.image, row.content_type, row.expires_at, row.uploaded_at = image, content_type, expires_at, now
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="community.qr_saved",
        target_type="community_group_qr",
        target_id=row.id,
        detail={"chat_id": chat_id, "expires_at": expires_at.isoformat()},
    )
    return row


def qr_of(session: Session, *, workspace_id: int, chat_id: str) -> GroupQr | None:
    return session.scalar(
        select(GroupQr).where(GroupQr.workspace_id == workspace_id, GroupQr.chat_id == chat_id)
    )


def qr_expiries(session: Session, *, workspace_id: int) -> dict[str, datetime]:
    return dict(
        session.execute(
            select(GroupQr.chat_id, GroupQr.expires_at).where(GroupQr.workspace_id == workspace_id)
        )
        .tuples()
        .all()
    )


def get_qr(session: Session, *, workspace_id: int, qr_id: int) -> GroupQr:
    row = session.get(GroupQr, qr_id)
    if row is None or row.workspace_id != workspace_id:
        raise NotFound(f"no group QR {qr_id} in this workspace", where="qr_id")
    return row


def member_condition(*, workspace_id: int) -> Any:
    """Customers in at least one group now (for the non-member cohort)."""
    rows = matched_members(workspace_id=workspace_id).subquery()
    return select(rows.c.customer_id).where(rows.c.customer_id.is_not(None))


__all__ = [
    "add_tag",
    "get_group",
    "get_qr",
    "groups_of_customer",
    "groups_tagged",
    "list_groups",
    "matched_members",
    "member_condition",
    "members_of",
    "qr_expiries",
    "qr_of",
    "remove_tag",
    "save_qr",
    "sync",
    "tags_by_group",
]
