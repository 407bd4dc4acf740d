"""A workspace's WeCom settings (corp id, secret, callback token and EncodingAESKey), its API client,
and the staff mapping (WeCom userid → siyu user)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom.client import DEFAULT_BASE_URL, WecomClient
from siyu.wecom.crypto import MessageCrypt, aes_key
from siyu.wecom.models import WecomContactWay, WecomFollow, WecomGroupChat, WecomSettings, WecomStaff

CALLBACK_PATH = "/wecom/callback/{key}"
_CORP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9]{1,32}$")  # WeCom: English letters and digits, at most 32


@dataclass(frozen=True)
class SettingsView:
    """The settings as shown back: never the secret, only whether one is saved."""

    corp_id: str
    agent_id: str | None
    token: str
    encoding_aes_key: str
    has_secret: bool
    callback_path: str
    api_base_url: str


def _view(row: WecomSettings) -> SettingsView:
    return SettingsView(
        corp_id=row.corp_id,
        agent_id=row.agent_id,
        token=row.token,
        encoding_aes_key=row.encoding_aes_key,
        has_secret=bool(row.secret),
        callback_path=CALLBACK_PATH.format(key=row.callback_key),
        api_base_url=row.api_base_url,
    )


def get_settings_row(session: Session, *, workspace_id: int) -> WecomSettings:
    row = session.get(WecomSettings, workspace_id)
    if row is None:
        raise NotFound(
            "WeCom is not set up in this workspace",
            where="wecom settings",
            hint="enter the corp id, secret, token and EncodingAESKey on the WeCom settings page",
        )
    return row


def view_settings(session: Session, *, actor: Actor) -> SettingsView | None:
    """The workspace's settings without the secret, or None before they are entered."""
    actor.require(Permission.MANAGE)
    row = session.get(WecomSettings, actor.workspace_id)
    return None if row is None else _view(row)


def save_settings(
    session: Session,
    *,
    actor: Actor,
    corp_id: str,
    token: str,
    encoding_aes_key: str,
    secret: str | None = None,
    agent_id: str | None = None,
    api_base_url: str | None = None,
) -> SettingsView:
    """Enter or change the settings; an empty `secret` keeps the saved one (it is never shown back), and
    `api_base_url=None` the saved API address ("" sets WeCom's own again)."""
    actor.require(Permission.MANAGE)
    corp_id, token, encoding_aes_key = corp_id.strip(), token.strip(), encoding_aes_key.strip()
    if not _CORP_ID.match(corp_id):
        raise ValidationFailed(
            f"{corp_id!r} is not a corp id",
            where="corp_id",
            hint="我的企业 → 企业信息 → 企业ID, e.g. ww1436e0e65a779aee",
        )
    if not _TOKEN.match(token):
        raise ValidationFailed(
            "the token must be 1 to 32 English letters and digits", where="token", hint="generate it in WeCom"
        )
    aes_key(encoding_aes_key)
    row = session.get(WecomSettings, actor.workspace_id)
    if api_base_url is None:  # not given: keep the saved address (a proxy set once stays set)
        base = row.api_base_url if row is not None else DEFAULT_BASE_URL
    else:
        base = api_base_url.strip().rstrip("/") or DEFAULT_BASE_URL
    if not base.startswith(("https://", "http://")):
        raise ValidationFailed(
            f"{base!r} is not an http(s) address",
            where="api_base_url",
            hint="e.g. https://qyapi.weixin.qq.com",
        )
    secret = (secret or "").strip()
    if row is None:
        if not secret:
            raise ValidationFailed(
                "the secret is missing",
                where="secret",
                hint="客户联系 → API → Secret (the customer-contact secret)",
            )
        row = WecomSettings(
            workspace_id=actor.workspace_id, callback_key=secrets.token_urlsafe(24), created_at=utcnow()
        )
        session.add(row)
    changed = [
        name
        for name, old, new in (
            ("corp_id", row.corp_id, corp_id),
            ("token", row.token, token),
            ("encoding_aes_key", row.encoding_aes_key, encoding_aes_key),
            ("agent_id", row.agent_id, agent_id or None),
            ("api_base_url", row.api_base_url, base),
        )
        if old != new
    ] + (["secret"] if secret and secret != row.secret else [])
    row.corp_id, row.token, row.encoding_aes_key = corp_id, token, encoding_aes_key
    row.agent_id, row.api_base_url = agent_id or None, base
    if secret:
        row.secret = secret
    row.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="wecom.settings_saved",
        target_type="wecom_settings",
        target_id=actor.workspace_id,
        detail={"changed": changed},  # names only: the secret's value never reaches the audit log
    )
    return _view(row)


def settings_for_callback(session: Session, *, callback_key: str) -> WecomSettings:
    row = session.scalar(select(WecomSettings).where(WecomSettings.callback_key == callback_key))
    if row is None:
        raise NotFound(
            "no WeCom callback at this address", where="callback_key", hint="copy the URL from settings"
        )
    return row


def crypt_for(row: WecomSettings) -> MessageCrypt:
    return MessageCrypt(token=row.token, encoding_aes_key=row.encoding_aes_key, receive_id=row.corp_id)


def client_for(session: Session, *, workspace_id: int, timeout: float = 10.0) -> WecomClient:
    """A client of the workspace's corp (the caller closes it, or uses it in a `with`)."""
    row = get_settings_row(session, workspace_id=workspace_id)
    return WecomClient(corp_id=row.corp_id, secret=row.secret, base_url=row.api_base_url, timeout=timeout)


def configured_workspaces(session: Session) -> list[int]:
    """The workspaces that have WeCom settings (the worker's follow-up runs for each)."""
    return list(session.scalars(select(WecomSettings.workspace_id).order_by(WecomSettings.workspace_id)))


def wecom_client(session: Session, workspace_id: int, client: WecomClient | None) -> tuple[WecomClient, bool]:
    """The client given, or the workspace's own (True: the caller closes it)."""
    return (client, False) if client is not None else (client_for(session, workspace_id=workspace_id), True)


# --- staff ------------------------------------------------------------------------------------------


def ensure_staff(
    session: Session, *, workspace_id: int, wecom_userid: str, name: str | None = None
) -> WecomStaff:
    """The staff row of a WeCom userid (created when first seen, e.g. in a callback)."""
    query = select(WecomStaff).where(
        WecomStaff.workspace_id == workspace_id, WecomStaff.wecom_userid == wecom_userid
    )
    staff = session.scalar(query)
    if staff is None:
        try:
            with session.begin_nested():
                staff = WecomStaff(
                    workspace_id=workspace_id, wecom_userid=wecom_userid, name=name or "", created_at=utcnow()
                )
                session.add(staff)
        except IntegrityError:  # two callbacks about a new staff member at once: the other one added it
            staff = session.scalars(query).one()
    elif name and staff.name != name:
        staff.name = name
    return staff


def map_staff(session: Session, *, actor: Actor, wecom_userid: str, user_id: int | None) -> WecomStaff:
    """Say which siyu user a WeCom member is (None: no account)."""
    actor.require(Permission.MANAGE)
    wecom_userid = wecom_userid.strip()
    if not wecom_userid or len(wecom_userid) > 64:
        raise ValidationFailed("a WeCom userid has 1 to 64 characters", where="wecom_userid")
    if user_id is not None:
        members = auth.member_ids_by_email(session, workspace_id=actor.workspace_id)
        if user_id not in set(members.values()):
            raise NotFound(f"user {user_id} is not a member of this workspace", where="user_id")
    staff = ensure_staff(session, workspace_id=actor.workspace_id, wecom_userid=wecom_userid)
    staff.user_id = user_id
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="wecom.staff_mapped",
        target_type="wecom_staff",
        target_id=staff.id,
        detail={"wecom_userid": wecom_userid, "user_id": user_id},
    )
    return staff


def list_staff(session: Session, *, workspace_id: int) -> list[WecomStaff]:
    return list(
        session.scalars(
            select(WecomStaff)
            .where(WecomStaff.workspace_id == workspace_id)
            .order_by(WecomStaff.wecom_userid)
        )
    )


def staff_user_ids(session: Session, *, workspace_id: int, wecom_userids: list[str]) -> dict[str, int]:
    """siyu user ids of the WeCom userids that have one."""
    rows = session.execute(
        select(WecomStaff.wecom_userid, WecomStaff.user_id).where(
            WecomStaff.workspace_id == workspace_id,
            WecomStaff.wecom_userid.in_(wecom_userids),
            WecomStaff.user_id.is_not(None),
        )
    )
    return {userid: user_id for userid, user_id in rows if user_id is not None}


@dataclass(frozen=True)
class Overview:
    """Counts for the settings page: current friends, staff seen, live contact ways, groups."""

    friends: int
    staff: int
    contact_ways: int
    groups: int


def overview(session: Session, *, workspace_id: int) -> Overview:
    def count(statement: Any) -> int:
        return int(session.scalar(statement) or 0)

    rows = select(func.count())
    return Overview(
        friends=count(
            rows.select_from(WecomFollow).where(
                WecomFollow.workspace_id == workspace_id, WecomFollow.removed_at.is_(None)
            )
        ),
        staff=count(rows.select_from(WecomStaff).where(WecomStaff.workspace_id == workspace_id)),
        contact_ways=count(
            rows.select_from(WecomContactWay).where(
                WecomContactWay.workspace_id == workspace_id, WecomContactWay.deleted_at.is_(None)
            )
        ),
        groups=count(
            rows.select_from(WecomGroupChat).where(
                WecomGroupChat.workspace_id == workspace_id, WecomGroupChat.dismissed_at.is_(None)
            )
        ),
    )
