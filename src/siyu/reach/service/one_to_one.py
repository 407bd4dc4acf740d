"""A member writing to one customer (1:1): the channels that can reach the customer and why the others
cannot, the message previewed as the customer would get it, and the send — through the gateway like
every other message (source `staff`), which decides caps, quiet hours and consent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.content import service as content_service
from siyu.content.schemas import ChannelPreview
from siyu.core.errors import ValidationFailed
from siyu.core.masking import mask_identity
from siyu.customers import service as customers
from siyu.reach.models import ReachContact, ReachMessage, Reason
from siyu.reach.schemas import MessageOut
from siyu.reach.service.gateway import (
    ADDRESS_KIND,
    PURPOSES,
    Source,
    address_for,
    blocked_addresses,
    consent_reason,
    message_key,
    send,
)
from siyu.reach.service.reads import message_out

# the channels a member writes to one customer on, in the order the page offers them
STAFF_CHANNELS = ("wecom", "sms", "email")
MAX_TEXT = 2000
_FORM_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class ChannelOption:
    """One channel for one customer and purpose: its address (masked as the actor sees it) and, when it
    cannot reach the customer at all, why. A channel without a reason may still be stopped by the
    gateway when the message is sent (caps, quiet hours, de-duplication)."""

    channel: str
    address: str | None
    reason: Reason | None

    @property
    def reachable(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class OneToOneResult:
    """What the gateway decided for the message, and whether it had been decided before (a repeated
    submit of the same form: nothing was decided twice)."""

    message: MessageOut
    repeated: bool


def ensure_may_write(session: Session, *, actor: Actor, customer_id: int) -> None:
    """Refuse unless this actor may write to the customer: a role that may contact customers, and for
    staff a customer assigned to them (PermissionDenied, 403), a customer of the workspace (NotFound)."""
    actor.require(Permission.CONTACT)
    customers.ensure_assigned(session, actor=actor, customer_id=customer_id)


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValidationFailed(
            f"purpose {purpose!r} is not known", where="purpose", hint="transactional or marketing"
        )


def _check_channel(channel: str) -> None:
    if channel not in STAFF_CHANNELS:
        raise ValidationFailed(
            f"channel {channel!r} is not one a member writes on",
            where="channel",
            hint=", ".join(STAFF_CHANNELS),
        )


def channel_options(session: Session, *, actor: Actor, customer_id: int, purpose: str) -> list[ChannelOption]:
    """Each channel a member writes on, for this customer and purpose: reachable, or the reason it is
    not (do-not-contact, not a WeCom friend, no address, a bounced address, no or withdrawn consent)."""
    ensure_may_write(session, actor=actor, customer_id=customer_id)
    _check_purpose(purpose)
    facts = customers.contact_facts(session, workspace_id=actor.workspace_id, customer_ids=[customer_id])[
        customer_id
    ]
    contact = session.get(ReachContact, customer_id)
    do_not_contact = contact is not None and contact.do_not_contact
    addresses = {channel: address_for(facts, channel) for channel in STAFF_CHANNELS}
    blocked = blocked_addresses(
        session,
        workspace_id=actor.workspace_id,
        addresses=[(c, a) for c, a in addresses.items() if a is not None],
    )
    options: list[ChannelOption] = []
    for channel in STAFF_CHANNELS:
        address = addresses[channel]
        reason: Reason | None
        if do_not_contact:
            reason = Reason.DO_NOT_CONTACT
        elif address is None:
            reason = Reason.NOT_WECOM_FRIEND if channel == "wecom" else Reason.NO_ADDRESS
        elif (channel, address) in blocked:
            reason = Reason.ADDRESS_BLOCKED
        else:
            reason = consent_reason(facts, channel, purpose)
        shown = (
            mask_identity(ADDRESS_KIND[channel] or "", address, masked=actor.sees_masked_phones)
            if address
            else None
        )
        options.append(ChannelOption(channel=channel, address=shown, reason=reason))
    return options


def _body(channel: str, *, text: str, subject: str) -> dict[str, str]:
    if not text.strip():
        raise ValidationFailed("write the message first", where="text")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(
            f"the message is {len(text)} characters long; at most {MAX_TEXT}", where="text"
        )
    if channel == "email":
        if not subject.strip():
            raise ValidationFailed("an email needs a subject", where="subject")
        return {"subject": subject.strip()[:200], "text": text}
    return {"text": text}


def preview_message(
    session: Session, *, actor: Actor, customer_id: int, channel: str, text: str, subject: str = ""
) -> ChannelPreview:
    """The message rendered for this customer as they would receive it (variables, snippets, the SMS
    length), or its problems; nothing is stored."""
    ensure_may_write(session, actor=actor, customer_id=customer_id)
    _check_channel(channel)
    body = _body(channel, text=text, subject=subject)
    [preview] = content_service.preview(
        session, actor=actor, customer_id=customer_id, variants={channel: body}
    ).channels
    return preview


def form_key(*, actor: Actor, form_token: str, where: str = "form_token") -> str:
    """The idempotency key of one message a member writes (a rendering of the write form, or a key an
    API client sends with its request), the member's own: another member's same token is another key."""
    if not _FORM_TOKEN.match(form_token or ""):
        raise ValidationFailed(
            "the request carries no usable idempotency token",
            where=where,
            hint="8–64 letters, digits, - or _; on the page: reload it and write again",
        )
    return f"staff-form:{actor.user_id}:{form_token}"


def send_one(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    channel: str,
    purpose: str,
    text: str,
    subject: str = "",
    idempotency_key: str,
) -> OneToOneResult:
    """Write to one customer through the gateway (source `staff`, the message personalised for them),
    in the caller's transaction. The gateway decides: queued, deferred by quiet hours, or suppressed
    with its reason; the same idempotency key again decides nothing twice and returns that message."""
    ensure_may_write(session, actor=actor, customer_id=customer_id)
    _check_channel(channel)
    _check_purpose(purpose)
    body = _body(channel, text=text, subject=subject)
    source_ref = f"member:{actor.user_id}"
    summary = send(
        session,
        workspace_id=actor.workspace_id,
        source=Source.STAFF,
        source_ref=source_ref,
        customer_ids=[customer_id],
        content={channel: body},
        purpose=purpose,
        channel_preference=[channel],
        idempotency_key=idempotency_key,
        personalise=True,
        actor_user_id=actor.user_id,
    )
    key = message_key(
        source=Source.STAFF, source_ref=source_ref, step="", idempotency_key=idempotency_key,
        customer_id=customer_id,
    )  # fmt: skip
    message = session.scalar(
        select(ReachMessage).where(
            ReachMessage.workspace_id == actor.workspace_id, ReachMessage.idempotency_key == key
        )
    )
    assert message is not None  # written just now, or before under the same key
    return OneToOneResult(message=message_out(message, actor=actor), repeated=summary.existing > 0)
