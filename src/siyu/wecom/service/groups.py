"""Customer groups (客户群) synced from WeCom: groupchat/list + groupchat/get, and the
change_external_chat callbacks (create, update, dismiss)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.timeutil import utcnow
from siyu.wecom.client import WecomApiError, WecomClient
from siyu.wecom.models import WecomGroupChat, WecomSettings
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


def _store(session: Session, *, workspace_id: int, chat: dict[str, Any], status: int = 0) -> bool:
    """Upsert one group from a groupchat/get answer; True when it was new."""
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
    row.synced_at = utcnow()
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
                created += _store(
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
    """A change_external_chat callback: dismiss marks the group; create and update fetch it again (if
    WeCom does not answer in time, the next sync catches up)."""
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
    _store(session, workspace_id=workspace_id, chat=chat)


def list_groups(session: Session, *, workspace_id: int) -> list[WecomGroupChat]:
    return list(
        session.scalars(
            select(WecomGroupChat)
            .where(WecomGroupChat.workspace_id == workspace_id)
            .order_by(WecomGroupChat.name)
        )
    )
