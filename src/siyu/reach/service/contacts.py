"""How customers opt out of reach: do-not-contact (set by a member), an SMS reply "T" / "TD" / "退订"
(withdraws SMS marketing consent) and an email's one-click List-Unsubscribe link (RFC 8058)."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.config import get_settings
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import NotFound
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.reach.models import ReachContact

UNSUBSCRIBE_REPLIES = frozenset({"T", "TD", "退订"})
_SALT = "reach-unsubscribe"


def set_do_not_contact(
    session: Session, *, actor: Actor, customer_id: int, do_not_contact: bool, note: str = ""
) -> None:
    """Mark (or clear) a customer as not to be contacted on any channel, for any purpose."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    contact = session.get(ReachContact, customer_id, with_for_update=True)
    if contact is None:
        contact = ReachContact(customer_id=customer_id, workspace_id=actor.workspace_id)
        session.add(contact)
    if contact.do_not_contact == do_not_contact and contact.note == note:
        return
    contact.do_not_contact = do_not_contact
    contact.note = note[:200]
    contact.updated_at = utcnow()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="reach.do_not_contact",
        target_type="customer",
        target_id=customer_id,
        detail={"do_not_contact": do_not_contact, "note": note[:200]},
    )
    domain_events.record(
        session,
        workspace_id=actor.workspace_id,
        type=DomainEventType.REACH_DO_NOT_CONTACT,
        customer_id=customer_id,
        payload={"do_not_contact": do_not_contact},
    )


def is_unsubscribe_reply(text: str) -> bool:
    return text.strip().upper() in UNSUBSCRIBE_REPLIES


def handle_sms_reply(session: Session, *, workspace_id: int, phone: str, text: str) -> int | None:
    """An inbound SMS: "T", "TD" or "退订" (any case, surrounding space ignored) withdraws the sender's
    SMS marketing consent. Returns the customer whose consent was withdrawn, else None."""
    if not is_unsubscribe_reply(text):
        return None
    customer_id = customers.customer_id_by_identity(
        session, workspace_id=workspace_id, kind="phone", value=phone
    )
    if customer_id is None:
        return None
    customers.record_system_consent(
        session,
        workspace_id=workspace_id,
        customer_id=customer_id,
        contact_channel="sms",
        purpose="marketing",
        status="withdrawn",
        source=f"sms_reply:{text.strip()[:20]}",
    )
    return customer_id


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().secret_key, salt=_SALT)


def unsubscribe_token(*, workspace_id: int, customer_id: int, channel: str = "email") -> str:
    """A signed token naming whom a one-click unsubscribe link is for (no expiry: links in old mail work)."""
    return str(_serializer().dumps({"w": workspace_id, "c": customer_id, "ch": channel}))


def unsubscribe_url(*, workspace_id: int, customer_id: int, channel: str = "email") -> str:
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}/reach/unsubscribe/{unsubscribe_token(workspace_id=workspace_id, customer_id=customer_id, channel=channel)}"


def read_unsubscribe_token(token: str) -> dict[str, Any]:
    try:
        data = _serializer().loads(token)
    except BadSignature:
        raise NotFound(
            "this unsubscribe link is not valid", where="token", hint="use the link of a recent message"
        ) from None
    return {"workspace_id": int(data["w"]), "customer_id": int(data["c"]), "channel": str(data["ch"])}


def unsubscribe(session: Session, *, token: str) -> dict[str, Any]:
    """Withdraw marketing consent for the channel of a one-click link (repeating it changes nothing)."""
    data = read_unsubscribe_token(token)
    facts = customers.contact_facts(
        session, workspace_id=data["workspace_id"], customer_ids=[data["customer_id"]]
    )
    if data["customer_id"] not in facts:
        raise NotFound("this unsubscribe link names nobody", where="token")
    customers.record_system_consent(
        session,
        workspace_id=data["workspace_id"],
        customer_id=data["customer_id"],
        contact_channel=data["channel"],
        purpose="marketing",
        status="withdrawn",
        source="list_unsubscribe",
    )
    return data
