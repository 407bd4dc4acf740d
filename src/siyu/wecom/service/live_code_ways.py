"""Live codes' contact ways in WeCom: one single-staff QR way (type 1, scene 2) per member of a live code,
carrying the code's state, so that siyu keeps the assignment and the callback's (UserID, State) name
the code and the member. These calls only talk to WeCom; `siyu.wecom.tasks.sync_live_codes` records
what they did in livecodes' rows, each in a transaction of its own (docs/livecodes.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.core.errors import ValidationFailed
from siyu.wecom.client import WecomApiError, WecomClient
from siyu.wecom.models import WecomSettings, WecomStaff
from siyu.wecom.service.contact_ways import QR_CODE, SINGLE

ADD_PATH = "/cgi-bin/externalcontact/add_contact_way"
UPDATE_PATH = "/cgi-bin/externalcontact/update_contact_way"
DEL_PATH = "/cgi-bin/externalcontact/del_contact_way"
LIST_PATH = "/cgi-bin/externalcontact/list_contact_way"
GET_PATH = "/cgi-bin/externalcontact/get_contact_way"
INVALID_CONFIG_ID = 41044  # WeCom: the config_id names no way (deleted already)
LOOKUP_MARGIN = timedelta(minutes=5)  # clocks of siyu and WeCom may differ this much
LIST_LIMIT = 100


@dataclass(frozen=True)
class PushedWay:
    """What WeCom holds after a push: the way's config_id and QR (None, None: no way)."""

    config_id: str | None
    qr_code: str | None
    adopted: bool = False  # found by state and user after an interrupted add, not added again
    gone: bool = False  # update_contact_way said the config_id names no way (deleted in WeCom's console)


def configured_workspace_ids(session: Session) -> list[int]:
    """Workspaces with WeCom settings (the others are skipped by the WeCom worker)."""
    return list(session.scalars(select(WecomSettings.workspace_id).order_by(WecomSettings.workspace_id)))


def wecom_userids(session: Session, *, workspace_id: int, user_ids: list[int]) -> dict[int, str]:
    """The WeCom userid of each siyu user that has one: the member's own (membership), else the staff
    mapping of the WeCom settings page."""
    wanted = set(user_ids)
    found = {
        m.user_id: m.wecom_userid
        for m in auth.list_members(session, workspace_id=workspace_id)
        if m.user_id in wanted and m.wecom_userid
    }
    missing = wanted - set(found)
    if missing:
        for userid, user_id in session.execute(
            select(WecomStaff.wecom_userid, WecomStaff.user_id)
            .where(WecomStaff.workspace_id == workspace_id, WecomStaff.user_id.in_(missing))
            .order_by(WecomStaff.id)
        ):
            if user_id is not None:
                found.setdefault(user_id, userid)
    return found


def find_way(
    client: WecomClient, *, state: str, userid: str, since: datetime, now: datetime
) -> tuple[str, str | None] | None:
    """The config_id and QR of a way of `state` for `userid` alone made since `since` (list_contact_way
    over that window, get_contact_way of each), or None."""
    cursor = ""
    while True:
        body: dict[str, Any] = {
            "start_time": int((since - LOOKUP_MARGIN).timestamp()),
            "end_time": int((now + LOOKUP_MARGIN).timestamp()),
            "limit": LIST_LIMIT,
        }
        if cursor:
            body["cursor"] = cursor
        answer = client.post(LIST_PATH, body)
        for entry in answer.get("contact_way") or []:
            config_id = entry.get("config_id")
            if not config_id:
                continue
            way = client.post(GET_PATH, {"config_id": config_id}).get("contact_way") or {}
            if way.get("state") == state and list(way.get("user") or []) == [userid]:
                return str(config_id), way.get("qr_code")
        cursor = str(answer.get("next_cursor") or "")
        if not cursor:
            return None


def push_way(
    client: WecomClient,
    *,
    wanted: bool,
    state: str,
    userid: str | None,
    remark: str,
    skip_verify: bool,
    config_id: str | None,
    adding_since: datetime | None,
    now: datetime,
) -> PushedWay:
    """Bring one member's way in WeCom to what the live code wants: made (add_contact_way), changed
    (update_contact_way by config_id: remark, skip_verify, state, user) or removed (del_contact_way).

    `adding_since` set and no config_id: an earlier add may have gone through unrecorded, so the way is
    looked up by state and user first and adopted when found (never a second way for one member)."""
    adopted = False
    qr_code: str | None = None
    if config_id is None and adding_since is not None and userid is not None:
        found = find_way(client, state=state, userid=userid, since=adding_since, now=now)
        if found is not None:
            (config_id, qr_code), adopted = found, True
    if not wanted:
        if config_id is not None:
            try:
                client.post(DEL_PATH, {"config_id": config_id})
            except WecomApiError as exc:
                if exc.errcode != INVALID_CONFIG_ID:  # gone already (deleted in WeCom's console)
                    raise
        return PushedWay(None, None, adopted=adopted)
    if userid is None:
        raise ValidationFailed(
            "the staff member has no WeCom userid",
            where="staff",
            hint="set the member's WeCom userid, or map the WeCom member on the WeCom settings page",
        )
    fields: dict[str, Any] = {"remark": remark, "skip_verify": skip_verify, "state": state, "user": [userid]}
    if config_id is not None:
        try:
            client.post(UPDATE_PATH, {"config_id": config_id, **fields})
        except WecomApiError as exc:
            if exc.errcode != INVALID_CONFIG_ID:
                raise
            # no add here: the next push makes the way again behind the adding marker (a crash now
            # must not leave an unrecorded way)
            return PushedWay(None, None, gone=True)
        return PushedWay(config_id, qr_code, adopted=adopted)
    answer = client.post(ADD_PATH, {"type": SINGLE, "scene": QR_CODE, **fields})
    return PushedWay(str(answer["config_id"]), answer.get("qr_code"))
