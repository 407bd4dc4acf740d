"""JSON routes of reach: staff and API sends through the gateway, the outbox (messages, accounting,
requeue), the policy, do-not-contact, provider receipts and inbound SMS replies, and the push endpoints
providers call (Aliyun SMS reports and replies, authorised by the workspace's token in the URL)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound
from siyu.customers import service as customers
from siyu.reach import service
from siyu.reach.schemas import (
    AccountingOut,
    AliyunPushOut,
    AliyunSmsReportIn,
    AliyunSmsUpIn,
    ChannelOptionOut,
    DoNotContactIn,
    MessageOut,
    OneToOneIn,
    OneToOneOut,
    PolicyIn,
    PolicyOut,
    PushUrlsOut,
    ReceiptIn,
    SendIn,
    SendOut,
    SmsReplyIn,
)
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/reach", tags=["reach"])


@router.post("/sends", response_model=SendOut, status_code=201)
def send(body: SendIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> SendOut:
    """Send to customers through the gateway: each gets one decision (queued, deferred or suppressed with
    its reason). Repeating a request with the same idempotency key decides nothing twice."""
    wanted = set(body.customer_ids)
    visible = customers.visible_customer_ids(session, actor=actor, customer_ids=wanted)
    if visible != wanted:
        raise NotFound(
            f"{len(wanted - visible)} customer id(s) are not customers you can see: {sorted(wanted - visible)[:10]}",
            where="customer_ids",
        )
    summary = service.send(
        session,
        workspace_id=actor.workspace_id,
        source=body.source,
        source_ref=body.source_ref,
        step=body.step,
        customer_ids=body.customer_ids,
        content=body.content,
        purpose=body.purpose,
        channel_preference=body.channel_preference,
        idempotency_key=body.idempotency_key,
        send_at=body.send_at,
        personalise=body.personalise,
        actor_user_id=actor.user_id,
    )
    return SendOut(
        audience=summary.audience,
        created=summary.created,
        existing=summary.existing,
        by_status=summary.by_status,
        by_reason=summary.by_reason,
    )


@router.get("/customers/{customer_id}/channels", response_model=list[ChannelOptionOut])
def channels(
    customer_id: int,
    session: DbSession,
    actor: Actor = require(Permission.CONTACT),
    purpose: str = "transactional",
) -> list[ChannelOptionOut]:
    """The channels a member can write to the customer on for the purpose, or why not."""
    return [
        ChannelOptionOut(
            channel=o.channel,
            address=o.address,
            reachable=o.reachable,
            reason=o.reason.value if o.reason else None,
        )
        for o in service.channel_options(session, actor=actor, customer_id=customer_id, purpose=purpose)
    ]


@router.post("/customers/{customer_id}/messages", response_model=OneToOneOut, status_code=201)
def write(
    customer_id: int, body: OneToOneIn, session: DbSession, actor: Actor = require(Permission.CONTACT)
) -> OneToOneOut:
    """A member writes to one customer (source staff) through the gateway; staff only to customers
    assigned to them (403 otherwise). The same idempotency key again returns the one message."""
    sent = service.send_one(
        session,
        actor=actor,
        customer_id=customer_id,
        channel=body.channel,
        purpose=body.purpose,
        text=body.text,
        subject=body.subject,
        idempotency_key=service.form_key(
            actor=actor, form_token=body.idempotency_key, where="idempotency_key"
        ),
    )
    return OneToOneOut(message=sent.message, repeated=sent.repeated)


@router.get("/messages", response_model=list[MessageOut])
def messages(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    status: Annotated[list[str] | None, Query()] = None,
    customer_id: int | None = None,
    source: str | None = None,
    source_ref: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[MessageOut]:
    """The outbox, newest first; page with `before_id` (the last id of the previous page)."""
    return service.list_messages(
        session, actor=actor, statuses=status, customer_id=customer_id, source=source,
        source_ref=source_ref, before_id=before_id, limit=limit,
    )  # fmt: skip


@router.get("/messages/{message_id}", response_model=MessageOut)
def message(message_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> MessageOut:
    return service.get_message(session, actor=actor, message_id=message_id)


@router.post("/messages/{message_id}/requeue", response_model=MessageOut)
def requeue(message_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> MessageOut:
    """Send a dead letter again (same idempotency key, attempts from zero)."""
    return service.requeue(session, actor=actor, message_id=message_id)


@router.get("/accounting", response_model=AccountingOut)
def accounting(
    source: str, source_ref: str, session: DbSession, actor: Actor = require(Permission.READ)
) -> AccountingOut:
    """Every decision of one source by status and reason; the total is its audience."""
    result = service.accounting(
        session, workspace_id=actor.workspace_id, source=source, source_ref=source_ref
    )
    return AccountingOut(**result.__dict__)


def _policy_out(policy: service.Policy) -> PolicyOut:
    return PolicyOut.model_validate(policy.as_dict())


@router.get("/policy", response_model=PolicyOut)
def policy(session: DbSession, actor: Actor = require(Permission.READ)) -> PolicyOut:
    return _policy_out(service.get_policy(session, workspace_id=actor.workspace_id))


@router.patch("/policy", response_model=PolicyOut)
def update_policy(body: PolicyIn, session: DbSession, actor: Actor = require(Permission.MANAGE)) -> PolicyOut:
    """Change the fields given; `quiet_hours_off: true` turns quiet hours off."""
    changes = body.model_dump(exclude_unset=True, exclude={"quiet_hours_off"})
    if body.quiet_hours_off:
        changes.update(quiet_start=None, quiet_end=None)
    if "channel_caps" in changes and changes["channel_caps"] is not None:
        changes["channel_caps"] = {k: dict(v) for k, v in changes["channel_caps"].items()}
    changes = {k: v for k, v in changes.items() if v is not None or k in ("quiet_start", "quiet_end")}
    return _policy_out(service.update_policy(session, actor=actor, changes=changes))


@router.put("/contacts/{customer_id}/do-not-contact", status_code=204)
def do_not_contact(
    customer_id: int, body: DoNotContactIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> None:
    """Mark a customer as not to be contacted on any channel (or clear the mark)."""
    service.set_do_not_contact(
        session, actor=actor, customer_id=customer_id, do_not_contact=body.do_not_contact, note=body.note
    )


@router.post("/receipts", status_code=204)
def receipt(body: ReceiptIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> None:
    """A provider's delivery report or bounce for a sent message (by its provider message id)."""
    found = service.record_receipt(
        session, workspace_id=actor.workspace_id, provider_message_id=body.provider_message_id,
        outcome=body.outcome, detail=body.detail,
    )  # fmt: skip
    if found is None:
        raise NotFound(
            f"no message has provider id {body.provider_message_id!r}", where="provider_message_id"
        )


@router.post("/sms-replies")
def sms_reply(
    body: SmsReplyIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> dict[str, bool]:
    """An inbound SMS reply; "T", "TD" or "退订" withdraws the sender's SMS marketing consent."""
    customer_id = service.handle_sms_reply(
        session, workspace_id=actor.workspace_id, phone=body.phone, text=body.text
    )
    return {"unsubscribed": customer_id is not None}


@router.get("/push-urls", response_model=PushUrlsOut)
def push_urls(actor: Actor = require(Permission.MANAGE)) -> PushUrlsOut:
    """The workspace's URLs to enter in the SMS provider's console (they carry its secret token)."""
    return PushUrlsOut(**service.push_urls(workspace_id=actor.workspace_id))


@router.post("/push/{token}/aliyun-sms/report", response_model=AliyunPushOut)
def aliyun_sms_report(token: str, body: list[AliyunSmsReportIn], session: DbSession) -> AliyunPushOut:
    """Aliyun's SmsReport push: each report makes its message delivered or failed (repeats change nothing)."""
    workspace_id = service.workspace_of_push_token(token)
    service.record_sms_reports(
        session, workspace_id=workspace_id, reports=[item.model_dump() for item in body]
    )
    return AliyunPushOut()


@router.post("/push/{token}/aliyun-sms/up", response_model=AliyunPushOut)
def aliyun_sms_up(token: str, body: list[AliyunSmsUpIn], session: DbSession) -> AliyunPushOut:
    """Aliyun's SmsUp push: "T", "TD" or "退订" withdraws the sender's SMS marketing consent."""
    workspace_id = service.workspace_of_push_token(token)
    service.handle_sms_up(session, workspace_id=workspace_id, replies=[item.model_dump() for item in body])
    return AliyunPushOut()
