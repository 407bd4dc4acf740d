"""The callback endpoint's work: verify and decrypt what WeCom sends, then turn customer-contact events
into siyu data — the customer (by wecom_external_userid), a customer event, the staff–customer friend
relation, and domain events (wecom.staff_deleted is the churn alert).

WeCom waits 5 seconds for "success" and retries up to three times: each callback is recorded once by a
key of its content, so a retry changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core import domain_events
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.ingest import service as ingest
from siyu.livecodes import attribution as live_codes
from siyu.wecom.client import WecomApiError
from siyu.wecom.crypto import CallbackRejected
from siyu.wecom.models import WecomCallback, WecomContactWay, WecomFollow, WecomSettings
from siyu.wecom.service import groups
from siyu.wecom.service.settings import client_for, crypt_for, ensure_staff, settings_for_callback

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
LOOKUP_TIMEOUT_SECONDS = 2.0  # externalcontact/get during a callback: WeCom gives the whole answer 5 s

# customer event types recorded from callbacks
FRIEND_ADDED = "wecom.friend_added"
FRIEND_HALF_ADDED = "wecom.friend_half_added"
CONTACT_EDITED = "wecom.contact_edited"
FRIEND_DELETED = "wecom.friend_deleted"  # the staff member deleted the customer
STAFF_DELETED = "wecom.staff_deleted"  # the customer deleted the staff member: churn alert


@dataclass(frozen=True)
class CallbackResult:
    """What one callback did: `duplicate` when it was received before (a WeCom retry)."""

    event: str
    change_type: str
    duplicate: bool
    customer_id: int | None = None


def parse_xml(text: str | bytes, *, where: str) -> dict[str, str]:
    """The child elements of a WeCom <xml> document as {tag: text} (defusedxml: no entities, no DTDs)."""
    try:
        root = fromstring(text)
    except (ParseError, DefusedXmlException) as exc:
        raise ValidationFailed(f"the {where} is not valid XML: {exc}", where=where) from None
    return {child.tag: (child.text or "").strip() for child in root}


def verify_url(
    session: Session,
    *,
    callback_key: str,
    msg_signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    echostr: str | None,
    tolerance_seconds: int,
    now: float | None = None,
) -> str:
    """WeCom's URL check (GET): the decrypted echostr, to be answered as plain text."""
    row = settings_for_callback(session, callback_key=callback_key)
    return crypt_for(row).verify_url(
        msg_signature=msg_signature,
        timestamp=timestamp,
        nonce=nonce,
        echostr=echostr,
        tolerance_seconds=tolerance_seconds,
        now=now,
    )


def receive(
    session: Session,
    *,
    callback_key: str,
    msg_signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    body: bytes,
    tolerance_seconds: int,
    now: float | None = None,
) -> CallbackResult:
    """Verify, decrypt and apply one event callback (POST) in the caller's transaction."""
    row = settings_for_callback(session, callback_key=callback_key)
    if len(body) > MAX_BODY_BYTES:
        raise ValidationFailed(f"the callback body is larger than {MAX_BODY_BYTES} bytes", where="body")
    envelope = parse_xml(body, where="callback body")
    encrypt = envelope.get("Encrypt")
    if not encrypt:
        raise CallbackRejected("the callback has no Encrypt element", where="Encrypt")
    crypt = crypt_for(row)
    crypt.verify(
        msg_signature=msg_signature,
        timestamp=timestamp,
        nonce=nonce,
        encrypt=encrypt,
        tolerance_seconds=tolerance_seconds,
        now=now,
    )
    message = parse_xml(crypt.decrypt(encrypt), where="decrypted message")
    return apply_message(session, settings=row, message=message)


def _dedupe_key(message: dict[str, str]) -> str:
    # the fields that make one event itself; a retry carries the same values (and a new nonce)
    parts = [
        message.get(k, "")
        for k in (
            "Event",
            "ChangeType",
            "UserID",
            "ExternalUserID",
            "ChatId",
            "CreateTime",
            "UpdateDetail",
            "State",
            "MsgId",
        )
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _occurred_at(message: dict[str, str]) -> datetime:
    try:
        return datetime.fromtimestamp(int(message.get("CreateTime", "")), tz=UTC)
    except ValueError:
        return utcnow()


def apply_message(session: Session, *, settings: WecomSettings, message: dict[str, str]) -> CallbackResult:
    """Record a decrypted callback once and turn it into siyu data."""
    workspace_id = settings.workspace_id
    event, change = message.get("Event", message.get("MsgType", "")), message.get("ChangeType", "")
    key = _dedupe_key(message)
    seen = session.scalar(
        select(WecomCallback.id).where(
            WecomCallback.workspace_id == workspace_id, WecomCallback.dedupe_key == key
        )
    )
    if seen is not None:
        return CallbackResult(event=event, change_type=change, duplicate=True)
    try:
        with session.begin_nested():
            session.add(
                WecomCallback(
                    workspace_id=workspace_id,
                    dedupe_key=key,
                    event=event[:64],
                    change_type=change[:64],
                    payload=message,
                    received_at=utcnow(),
                )
            )
    except IntegrityError:  # the same callback, delivered twice at once: the other one applies it
        return CallbackResult(event=event, change_type=change, duplicate=True)
    customer_id: int | None = None
    if event == "change_external_contact":
        customer_id = _contact_change(session, settings=settings, message=message, key=key)
    elif event == "change_external_chat":
        groups.apply_chat_change(session, settings=settings, message=message)
    return CallbackResult(event=event, change_type=change, duplicate=False, customer_id=customer_id)


# --- change_external_contact -------------------------------------------------------------------------


def _lookup_contact(settings: WecomSettings, session: Session, external_userid: str) -> dict[str, Any]:
    """name and unionid of a new contact (externalcontact/get); empty when WeCom does not answer in time."""
    try:
        with client_for(
            session, workspace_id=settings.workspace_id, timeout=LOOKUP_TIMEOUT_SECONDS
        ) as client:
            body = client.get("/cgi-bin/externalcontact/get", external_userid=external_userid)
    except WecomApiError as exc:
        log.warning("externalcontact/get failed for a new contact: %s", exc)
        return {}
    contact = body.get("external_contact") or {}
    return contact if isinstance(contact, dict) else {}


def _record_event(
    session: Session,
    *,
    workspace_id: int,
    external_userid: str,
    type: str,
    occurred_at: datetime,
    key: str,
    properties: dict[str, Any],
    unionid: str | None = None,
) -> int | None:
    """The customer event, through the same loader as every other way in (resolving or creating the
    customer by wecom_external_userid); the customer's id."""
    record: dict[str, Any] = {
        "wecom_external_userid": external_userid,
        "type": type,
        "occurred_at": occurred_at.isoformat(),
        "source": "wecom",
        "external_id": f"wecom:{key}",
        "properties": json.dumps(properties, ensure_ascii=False),
    }
    if unionid:
        record["wechat_unionid"] = unionid
    _job, result, rejects = ingest.import_records(
        session, workspace_id=workspace_id, kind="events", records=[record], source="wecom"
    )
    if rejects:
        raise ValidationFailed(
            f"the callback's event was refused: {rejects[0].reason}", where=f"callback.{rejects[0].column}"
        )
    return result.touched_customer_ids[0] if result.touched_customer_ids else None


def _follow(session: Session, *, workspace_id: int, userid: str, external_userid: str) -> WecomFollow | None:
    return session.scalar(
        select(WecomFollow).where(
            WecomFollow.workspace_id == workspace_id,
            WecomFollow.wecom_userid == userid,
            WecomFollow.external_userid == external_userid,
        )
    )


def _attribute_to_live_code(
    session: Session,
    *,
    workspace_id: int,
    state: str,
    external: str,
    userid: str,
    user_id: int | None,
    at: datetime,
) -> None:
    """Credit the add to the live code whose WeCom state this is; a state of another contact way (one
    made outside siyu's live codes) is no live code's and is left to the contact-way attribution."""
    with contextlib.suppress(NotFound):
        live_codes.record_add(
            session,
            workspace_id=workspace_id,
            state=state,
            external_userid=external,
            staff_userid=userid,
            staff_user_id=user_id,  # the staff mapping of WeCom settings; None: looked up by membership
            occurred_at=at,
        )


def _contact_change(
    session: Session, *, settings: WecomSettings, message: dict[str, str], key: str
) -> int | None:
    workspace_id = settings.workspace_id
    change = message.get("ChangeType", "")
    userid, external = message.get("UserID", ""), message.get("ExternalUserID", "")
    if not userid or not external:
        raise ValidationFailed(f"{change} without UserID or ExternalUserID", where="callback message")
    occurred_at = _occurred_at(message)
    staff = ensure_staff(session, workspace_id=workspace_id, wecom_userid=userid)
    follow = _follow(session, workspace_id=workspace_id, userid=userid, external_userid=external)
    properties: dict[str, Any] = {"staff": userid}
    if change in ("add_external_contact", "add_half_external_contact"):
        state = message.get("State") or None
        way = None
        if state:
            way = session.scalar(
                select(WecomContactWay).where(
                    WecomContactWay.workspace_id == workspace_id, WecomContactWay.state == state
                )
            )
        properties.update(
            {
                "state": state,
                "contact_way_id": way.id if way else None,
                "channel_id": way.channel_id if way else None,
            }
        )
        if change == "add_external_contact" and state:
            # before the customer is recorded below: the live code decides whether this add brought a
            # new customer (first channel, owner) and must see the pool as it was
            _attribute_to_live_code(
                session,
                workspace_id=workspace_id,
                state=state,
                external=external,
                userid=userid,
                user_id=staff.user_id,
                at=occurred_at,
            )
        contact = _lookup_contact(settings, session, external) if change == "add_external_contact" else {}
        if contact.get("name"):
            properties["name"] = contact["name"]
        type_ = FRIEND_ADDED if change == "add_external_contact" else FRIEND_HALF_ADDED
        customer_id = _record_event(
            session,
            workspace_id=workspace_id,
            external_userid=external,
            type=type_,
            occurred_at=occurred_at,
            key=key,
            properties=properties,
            unionid=contact.get("unionid") or None,
        )
        if change == "add_external_contact":
            if follow is None:
                follow = WecomFollow(workspace_id=workspace_id, wecom_userid=userid, external_userid=external)
                session.add(follow)
            follow.customer_id = customer_id
            follow.state, follow.contact_way_id = state, way.id if way else None
            follow.added_at, follow.removed_at, follow.removed_by = occurred_at, None, None
            follow.welcome_code = message.get("WelcomeCode") or None
            follow.welcome_sent_at = None
            session.flush()
            domain_events.record(
                session,
                workspace_id=workspace_id,
                type=DomainEventType.WECOM_FRIEND_ADDED,
                customer_id=customer_id,
                payload=properties,
                occurred_at=occurred_at,
            )
        return customer_id
    if change == "edit_external_contact":
        return _record_event(
            session,
            workspace_id=workspace_id,
            external_userid=external,
            type=CONTACT_EDITED,
            occurred_at=occurred_at,
            key=key,
            properties=properties,
        )
    if change in ("del_external_contact", "del_follow_user"):
        by_staff = change == "del_external_contact"
        if by_staff and message.get("Source"):
            properties["source"] = message["Source"]  # e.g. DELETE_BY_TRANSFER
        customer_id = _record_event(
            session,
            workspace_id=workspace_id,
            external_userid=external,
            type=FRIEND_DELETED if by_staff else STAFF_DELETED,
            occurred_at=occurred_at,
            key=key,
            properties=properties,
        )
        if follow is not None and follow.removed_at is None:
            follow.removed_at, follow.removed_by = occurred_at, "staff" if by_staff else "customer"
        live_codes.record_delete(
            session,
            workspace_id=workspace_id,
            external_userid=external,
            staff_userid=userid,
            occurred_at=occurred_at,
        )
        domain_events.record(
            session,
            workspace_id=workspace_id,
            type=DomainEventType.WECOM_FRIEND_DELETED if by_staff else DomainEventType.WECOM_STAFF_DELETED,
            customer_id=customer_id,
            payload=properties,
            occurred_at=occurred_at,
        )
        return customer_id
    return None  # other change types (transfer_fail …) are kept in wecom_callback only
