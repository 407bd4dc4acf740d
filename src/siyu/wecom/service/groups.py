"""Customer groups (客户群) synced from WeCom: groupchat/list + groupchat/get, and the
change_external_chat callbacks (create, update, dismiss), with each group's members and every join and
leave found between two answers (member-list differences, with the callback's join or quit scene)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from siyu.core.timeutil import utcnow
from siyu.wecom.client import WecomApiError, WecomClient
from siyu.wecom.models import (
    WecomGroupChat,
    WecomGroupMember,
    WecomGroupMemberChange,
    WecomSettings,
)
from siyu.wecom.service.settings import client_for

log = logging.getLogger(__name__)
PAGE = 1000  # groupchat/list takes at most 1000 per page
EXTERNAL_MEMBER = 2  # member_list[].type: 1 staff, 2 external contact


@dataclass(frozen=True)
class GroupSync:
    seen: int
    created: int
    updated: int


def _group(session: Session, *, workspace_id: int, chat_id: str) -> WecomGroupChat | None:
    return session.scalar(
        select(WecomGroupChat).where(
            WecomGroupChat.workspace_id == workspace_id, WecomGroupChat.chat_id == chat_id
        )
    )


def _member_id(member: dict[str, Any]) -> str:
    return str(member.get("userid") or "")[:64]


def _scene(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _record_members(
    session: Session,
    *,
    workspace_id: int,
    chat_id: str,
    members: list[dict[str, Any]],
    observed_at: datetime,
    source: str,
    first: bool,
    quit_scene: int | None,
) -> None:
    """Bring the group's member rows to `members` and record a change for each join and leave.

    A join takes the member's join_time from WeCom (when it lies before `observed_at`); a leave is
    dated `observed_at`, the first moment siyu knew of it. At a group's first sync every member is a
    join at their own join_time, so the history starts with the group's present members.
    """
    current = {
        row.member_id: row
        for row in session.scalars(
            select(WecomGroupMember).where(
                WecomGroupMember.workspace_id == workspace_id, WecomGroupMember.chat_id == chat_id
            )
        )
    }
    seen: set[str] = set()
    for member in members:
        member_id = _member_id(member)
        if not member_id or member_id in seen:
            continue
        seen.add(member_id)
        if member_id in current:
            row = current[member_id]
            row.unionid = member.get("unionid") or row.unionid
            continue
        joined_at = observed_at
        if member.get("join_time"):
            joined_at = min(datetime.fromtimestamp(int(member["join_time"]), tz=UTC), observed_at)
        row = WecomGroupMember(
            workspace_id=workspace_id,
            chat_id=chat_id,
            member_id=member_id,
            member_type=int(member.get("type") or EXTERNAL_MEMBER),
            unionid=member.get("unionid") or None,
            joined_at=joined_at,
            join_scene=_scene(member.get("join_scene")),
        )
        session.add(row)
        session.add(
            WecomGroupMemberChange(
                workspace_id=workspace_id,
                chat_id=chat_id,
                member_id=member_id,
                member_type=row.member_type,
                unionid=row.unionid,
                change="join",
                scene=row.join_scene,
                source="sync" if first else source,
                occurred_at=joined_at,
            )
        )
    gone = [row for member_id, row in current.items() if member_id not in seen]
    for row in gone:
        session.add(
            WecomGroupMemberChange(
                workspace_id=workspace_id,
                chat_id=chat_id,
                member_id=row.member_id,
                member_type=row.member_type,
                unionid=row.unionid,
                change="leave",
                scene=quit_scene,
                source=source,
                occurred_at=observed_at,
            )
        )
    if gone:
        session.execute(delete(WecomGroupMember).where(WecomGroupMember.id.in_([row.id for row in gone])))


def store_group(
    session: Session,
    *,
    workspace_id: int,
    chat: dict[str, Any],
    status: int = 0,
    observed_at: datetime | None = None,
    source: str = "sync",
    quit_scene: int | None = None,
) -> bool:
    """Upsert one group from a groupchat/get answer (`chat`, as WeCom shapes it) with its members,
    recording joins and leaves since the last answer; True when the group was new."""
    observed_at = observed_at or utcnow()
    row = _group(session, workspace_id=workspace_id, chat_id=chat["chat_id"])
    created = row is None
    if row is None:
        row = WecomGroupChat(workspace_id=workspace_id, chat_id=chat["chat_id"])
        session.add(row)
    members = chat.get("member_list") or []
    row.name = (chat.get("name") or "")[:100]
    row.owner = chat.get("owner") or ""
    row.status = status
    row.member_count = len(members)
    row.external_member_count = sum(1 for m in members if m.get("type") == EXTERNAL_MEMBER)
    row.members = [
        {
            k: m.get(k)
            for k in ("userid", "type", "join_time", "join_scene", "unionid")
            if m.get(k) is not None
        }
        for m in members
    ]
    if chat.get("create_time"):
        row.wecom_created_at = datetime.fromtimestamp(int(chat["create_time"]), tz=UTC)
    row.dismissed_at = None
    row.synced_at = observed_at
    session.flush()
    _record_members(
        session,
        workspace_id=workspace_id,
        chat_id=row.chat_id,
        members=members,
        observed_at=observed_at,
        source=source,
        first=created,
        quit_scene=quit_scene,
    )
    session.flush()
    return created


def _fetch(client: WecomClient, chat_id: str) -> dict[str, Any]:
    body = client.post("/cgi-bin/externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": 1})
    chat: dict[str, Any] = body["group_chat"]
    return chat


def sync_groups(session: Session, *, workspace_id: int, client: WecomClient | None = None) -> GroupSync:
    """Every customer group of the corp: listed page by page, each fetched and stored."""
    own = client is None
    client = client or client_for(session, workspace_id=workspace_id)
    seen = created = 0
    try:
        cursor = ""
        while True:
            body = client.post(
                "/cgi-bin/externalcontact/groupchat/list",
                {"status_filter": 0, "cursor": cursor, "limit": PAGE},
            )
            for item in body.get("group_chat_list") or []:
                seen += 1
                created += store_group(
                    session,
                    workspace_id=workspace_id,
                    chat=_fetch(client, item["chat_id"]),
                    status=item.get("status", 0),
                )
            cursor = body.get("next_cursor") or ""
            if not cursor:
                break
    finally:
        if own:
            client.close()
    return GroupSync(seen=seen, created=created, updated=seen - created)


def apply_chat_change(session: Session, *, settings: WecomSettings, message: dict[str, str]) -> None:
    """A change_external_chat callback: dismiss marks the group; create and update fetch it again and
    record the joins and leaves it shows, a del_member with the callback's QuitScene (if WeCom does
    not answer in time, the next sync catches up)."""
    workspace_id, chat_id = settings.workspace_id, message.get("ChatId", "")
    if not chat_id:
        return
    if message.get("ChangeType") == "dismiss":
        row = _group(session, workspace_id=workspace_id, chat_id=chat_id)
        if row is not None and row.dismissed_at is None:
            row.dismissed_at = utcnow()
        return
    try:
        with client_for(session, workspace_id=workspace_id, timeout=2.0) as client:
            chat = _fetch(client, chat_id)
    except WecomApiError as exc:
        log.warning("groupchat/get failed during a callback: %s", exc)
        return
    observed_at = utcnow()
    if (message.get("CreateTime") or "").isdigit():
        observed_at = min(datetime.fromtimestamp(int(message["CreateTime"]), tz=UTC), observed_at)
    store_group(
        session,
        workspace_id=workspace_id,
        chat=chat,
        observed_at=observed_at,
        source="callback",
        quit_scene=_scene(message.get("QuitScene")) if message.get("UpdateDetail") == "del_member" else None,
    )


def list_groups(session: Session, *, workspace_id: int) -> list[WecomGroupChat]:
    return list(
        session.scalars(
            select(WecomGroupChat)
            .where(WecomGroupChat.workspace_id == workspace_id)
            .order_by(WecomGroupChat.name)
        )
    )


def get_group(session: Session, *, workspace_id: int, chat_id: str) -> WecomGroupChat | None:
    return _group(session, workspace_id=workspace_id, chat_id=chat_id)


def group_members(*, workspace_id: int, chat_id: str | None = None) -> Select[Any]:
    """A selectable of the groups' present members: `chat_id`, `member_id` (userid or external_userid),
    `member_type` (1 staff, 2 external), `unionid`, `joined_at`, `join_scene`."""
    query = select(
        WecomGroupMember.chat_id,
        WecomGroupMember.member_id,
        WecomGroupMember.member_type,
        WecomGroupMember.unionid,
        WecomGroupMember.joined_at,
        WecomGroupMember.join_scene,
    ).where(WecomGroupMember.workspace_id == workspace_id)
    if chat_id is not None:
        query = query.where(WecomGroupMember.chat_id == chat_id)
    return query


def member_changes(
    *,
    workspace_id: int,
    chat_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Select[Any]:
    """A selectable of joins and leaves in [start, end): `chat_id`, `member_id`, `member_type`,
    `unionid`, `change` (join | leave), `scene`, `source`, `occurred_at`."""
    query = select(
        WecomGroupMemberChange.chat_id,
        WecomGroupMemberChange.member_id,
        WecomGroupMemberChange.member_type,
        WecomGroupMemberChange.unionid,
        WecomGroupMemberChange.change,
        WecomGroupMemberChange.scene,
        WecomGroupMemberChange.source,
        WecomGroupMemberChange.occurred_at,
    ).where(WecomGroupMemberChange.workspace_id == workspace_id)
    if chat_id is not None:
        query = query.where(WecomGroupMemberChange.chat_id == chat_id)
    if start is not None:
        query = query.where(WecomGroupMemberChange.occurred_at >= start)
    if end is not None:
        query = query.where(WecomGroupMemberChange.occurred_at < end)
    return query
