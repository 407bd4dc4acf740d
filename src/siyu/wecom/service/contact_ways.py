"""Contact ways (联系我, the WeCom side of a live code 活码): kept in sync with add_contact_way /
update_contact_way / del_contact_way. The `state` (at most 30 characters, unique in the workspace) comes
back in the add_external_contact callback and attributes the new friend to the code and its staff."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import audit
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom.client import WecomClient
from siyu.wecom.models import WecomContactWay
from siyu.wecom.service.settings import wecom_client

STATE_MAX = 30  # WeCom: "state … 不超过30个字符"
REMARK_MAX = 30
_STATE = re.compile(r"^[A-Za-z0-9_.:-]+$")
SINGLE, MULTI = 1, 2  # the way's WeCom `type`: one staff member, several
MINI_PROGRAM, QR_CODE = 1, 2  # its `scene`


def check_state(state: str) -> str:
    state = (state or "").strip()
    if not state:
        raise ValidationFailed("the state is empty", where="state", hint="e.g. store-sh-001")
    if len(state) > STATE_MAX:
        raise ValidationFailed(
            f"the state has {len(state)} characters; WeCom keeps at most {STATE_MAX}", where="state"
        )
    if not _STATE.match(state):
        raise ValidationFailed(
            f"{state!r} has characters other than letters, digits and _ . : -",
            where="state",
            hint="the state travels back in callbacks; keep it plain",
        )
    return state


def _users(users: list[str], type_: int) -> list[str]:
    users = list(dict.fromkeys(u.strip() for u in users if u and u.strip()))
    if not users:
        raise ValidationFailed("a contact way needs at least one staff userid", where="users")
    if type_ == SINGLE and len(users) != 1:
        raise ValidationFailed("a single-staff contact way (type 1) takes exactly one userid", where="users")
    if len(users) > 100:
        raise ValidationFailed("a contact way takes at most 100 staff", where="users")
    return users


def create_contact_way(
    session: Session,
    *,
    workspace_id: int,
    actor_user_id: int | None,
    state: str,
    users: list[str],
    type: int = MULTI,
    scene: int = QR_CODE,
    remark: str = "",
    skip_verify: bool = True,
    channel_id: int | None = None,
    client: WecomClient | None = None,
) -> WecomContactWay:
    """A new contact way in WeCom (add_contact_way), recorded with its config_id and QR code."""
    state = check_state(state)
    if type not in (SINGLE, MULTI) or scene not in (MINI_PROGRAM, QR_CODE):
        raise ValidationFailed("type is 1 or 2 and scene is 1 or 2", where="type")
    users = _users(users, type)
    if len(remark) > REMARK_MAX:
        raise ValidationFailed(f"the remark is longer than {REMARK_MAX} characters", where="remark")
    taken = session.scalar(
        select(WecomContactWay.id).where(
            WecomContactWay.workspace_id == workspace_id, WecomContactWay.state == state
        )
    )
    if taken is not None:
        raise Conflict(
            f"state {state!r} belongs to contact way {taken}", where="state", hint="choose another state"
        )
    body: dict[str, Any] = {
        "type": type,
        "scene": scene,
        "remark": remark,
        "skip_verify": skip_verify,
        "state": state,
        "user": users,
    }
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        answer = wecom.post("/cgi-bin/externalcontact/add_contact_way", body)
    finally:
        if own:
            wecom.close()
    way = WecomContactWay(
        workspace_id=workspace_id,
        config_id=answer["config_id"],
        state=state,
        type=type,
        scene=scene,
        users=users,
        remark=remark,
        skip_verify=skip_verify,
        qr_code=answer.get("qr_code"),
        channel_id=channel_id,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(way)
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="wecom.contact_way_created",
        target_type="wecom_contact_way",
        target_id=way.id,
        detail={"config_id": way.config_id, "state": state, "users": users},
    )
    return way


def get_contact_way(session: Session, *, workspace_id: int, contact_way_id: int) -> WecomContactWay:
    way = session.get(WecomContactWay, contact_way_id)
    if way is None or way.workspace_id != workspace_id or way.deleted_at is not None:
        raise NotFound(
            f"contact way {contact_way_id} does not exist in this workspace", where="contact_way_id"
        )
    return way


def update_contact_way(
    session: Session,
    *,
    workspace_id: int,
    actor_user_id: int | None,
    contact_way_id: int,
    users: list[str] | None = None,
    state: str | None = None,
    remark: str | None = None,
    skip_verify: bool | None = None,
    client: WecomClient | None = None,
) -> WecomContactWay:
    """Change a contact way in WeCom (update_contact_way, by its config_id) and here."""
    way = get_contact_way(session, workspace_id=workspace_id, contact_way_id=contact_way_id)
    body: dict[str, Any] = {"config_id": way.config_id}
    if users is not None:
        body["user"] = _users(users, way.type)
    if state is not None:
        state = check_state(state)
        clash = session.scalar(
            select(WecomContactWay.id).where(
                WecomContactWay.workspace_id == workspace_id,
                WecomContactWay.state == state,
                WecomContactWay.id != way.id,
            )
        )
        if clash is not None:
            raise Conflict(f"state {state!r} belongs to contact way {clash}", where="state")
        body["state"] = state
    if remark is not None:
        if len(remark) > REMARK_MAX:
            raise ValidationFailed(f"the remark is longer than {REMARK_MAX} characters", where="remark")
        body["remark"] = remark
    if skip_verify is not None:
        body["skip_verify"] = skip_verify
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        wecom.post("/cgi-bin/externalcontact/update_contact_way", body)
    finally:
        if own:
            wecom.close()
    if users is not None:
        way.users = body["user"]
    if state is not None:
        way.state = state
    if remark is not None:
        way.remark = remark
    if skip_verify is not None:
        way.skip_verify = skip_verify
    way.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="wecom.contact_way_updated",
        target_type="wecom_contact_way",
        target_id=way.id,
        detail={k: v for k, v in body.items() if k != "config_id"},
    )
    return way


def delete_contact_way(
    session: Session,
    *,
    workspace_id: int,
    actor_user_id: int | None,
    contact_way_id: int,
    client: WecomClient | None = None,
) -> None:
    """Remove a contact way from WeCom (del_contact_way); its row stays, marked deleted, for attribution."""
    way = get_contact_way(session, workspace_id=workspace_id, contact_way_id=contact_way_id)
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        wecom.post("/cgi-bin/externalcontact/del_contact_way", {"config_id": way.config_id})
    finally:
        if own:
            wecom.close()
    way.deleted_at = utcnow()
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="wecom.contact_way_deleted",
        target_type="wecom_contact_way",
        target_id=way.id,
        detail={"config_id": way.config_id},
    )


def list_contact_ways(session: Session, *, workspace_id: int) -> list[WecomContactWay]:
    return list(
        session.scalars(
            select(WecomContactWay)
            .where(WecomContactWay.workspace_id == workspace_id, WecomContactWay.deleted_at.is_(None))
            .order_by(WecomContactWay.id)
        )
    )
