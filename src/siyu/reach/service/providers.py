"""What providers report back: Aliyun SMS delivery reports and inbound replies (pushed to a per-workspace
URL whose token is signed with the secret key), and WeCom mass-message results mapped onto each message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core.config import get_settings
from siyu.core.errors import NotFound
from siyu.core.timeutil import utcnow
from siyu.reach.models import MessageStatus, ReachMessage
from siyu.reach.service.contacts import handle_sms_reply
from siyu.reach.service.outbox import apply_receipt, record_receipt
from siyu.wecom import service as wecom

_PUSH_SALT = "reach-provider-push"
PUSH_PATH = "/api/reach/push/{token}/{provider}/{kind}"
# WeCom: a staff member confirms a mass message within days, if ever (the poll gives up after this)
WECOM_CONFIRM_WITHIN = timedelta(days=3)
WECOM_STATUS_ERRORS = {
    2: "not a WeCom friend of the sending staff member any more",
    3: "already received another enterprise mass message that day (WeCom's limit)",
}


# --- push addresses ---------------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().secret_key, salt=_PUSH_SALT)


def push_token(*, workspace_id: int) -> str:
    """The unguessable token in the URLs a provider pushes a workspace's reports to (stable: derived from
    the secret key; changing the key changes every workspace's URLs)."""
    return str(_serializer().dumps({"w": workspace_id}))


def workspace_of_push_token(token: str) -> int:
    try:
        data = _serializer().loads(token)
        return int(data["w"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise NotFound(
            "no push address here", where="token", hint="copy the URL from GET /api/reach/push-urls"
        ) from None


def push_urls(*, workspace_id: int) -> dict[str, str]:
    """The workspace's push URLs to enter in the provider's console."""
    base = get_settings().public_base_url.rstrip("/")
    token = push_token(workspace_id=workspace_id)
    return {
        "aliyun_sms_report": base + PUSH_PATH.format(token=token, provider="aliyun-sms", kind="report"),
        "aliyun_sms_up": base + PUSH_PATH.format(token=token, provider="aliyun-sms", kind="up"),
    }


# --- Aliyun SMS ------------------------------------------------------------------------------------


@dataclass
class ReportCounts:
    delivered: int = 0
    failed: int = 0
    unknown: int = 0  # no message has that BizId / OutId (another system's, or already gone)


def record_sms_reports(
    session: Session, *, workspace_id: int, reports: Iterable[dict[str, Any]], now: datetime | None = None
) -> ReportCounts:
    """Aliyun's SmsReport push (phone_number, success, err_code, err_msg, biz_id, out_id, …): each sent
    message becomes delivered or failed. Aliyun retries a push it got no 200 for: repeats change nothing."""
    now = now or utcnow()
    counts = ReportCounts()
    for report in reports:
        biz_id = str(report.get("biz_id") or "")
        out_id = str(report.get("out_id") or "") or None
        success = bool(report.get("success"))
        detail = f"{report.get('err_code') or ''} {report.get('err_msg') or ''}".strip()
        message = record_receipt(
            session,
            workspace_id=workspace_id,
            provider_message_id=biz_id,
            outcome="delivered" if success else "failed",
            detail=detail,
            idempotency_key=out_id,
            now=now,
        )
        if message is None:
            counts.unknown += 1
        elif success:
            counts.delivered += 1
        else:
            counts.failed += 1
    return counts


def handle_sms_up(session: Session, *, workspace_id: int, replies: Iterable[dict[str, Any]]) -> int:
    """Aliyun's SmsUp push (phone_number, content, send_time, …): an unsubscribe reply ("T", "TD", "退订")
    withdraws the sender's SMS marketing consent. Returns how many withdrew; repeats change nothing."""
    withdrawn = 0
    for reply in replies:
        phone = str(reply.get("phone_number") or "")
        if phone and handle_sms_reply(
            session, workspace_id=workspace_id, phone=phone, text=str(reply.get("content") or "")
        ):
            withdrawn += 1
    return withdrawn


# --- WeCom mass messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenBatch:
    workspace_id: int
    msgid: str
    first_sent_at: datetime
    open_messages: int


def open_wecom_batches(session: Session, *, workspace_id: int | None = None) -> list[OpenBatch]:
    """Mass messages (msgids) of channel wecom with messages still waiting for their result."""
    query = (
        select(
            ReachMessage.workspace_id,
            ReachMessage.provider_message_id,
            func.min(ReachMessage.sent_at),
            func.count(),
        )
        .where(
            ReachMessage.channel == "wecom",
            ReachMessage.status == MessageStatus.SENT.value,
            ReachMessage.provider_message_id.is_not(None),
        )
        .group_by(ReachMessage.workspace_id, ReachMessage.provider_message_id)
        .order_by(func.min(ReachMessage.sent_at))
    )
    if workspace_id is not None:
        query = query.where(ReachMessage.workspace_id == workspace_id)
    return [OpenBatch(ws, str(msgid), sent_at, int(n)) for ws, msgid, sent_at, n in session.execute(query)]


@dataclass
class BatchOutcome:
    delivered: int = 0
    failed: int = 0
    waiting: int = 0


def apply_wecom_results(
    session: Session,
    *,
    workspace_id: int,
    msgid: str,
    results: wecom.TaskResults,
    now: datetime | None = None,
    confirm_within: timedelta = WECOM_CONFIRM_WITHIN,
) -> BatchOutcome:
    """Map WeCom's send results of one mass message onto its reach messages (by recipient): status 1
    delivered; 2 (no friend any more) and 3 (WeCom's daily limit) failed; 0 waits for the staff member
    to confirm, until `confirm_within` after the send, then fails. Safe to repeat."""
    now = now or utcnow()
    by_recipient = {r.recipient: r for r in results.recipients}
    outcome = BatchOutcome()
    messages: Sequence[ReachMessage] = session.scalars(
        select(ReachMessage)
        .where(
            ReachMessage.workspace_id == workspace_id,
            ReachMessage.channel == "wecom",
            ReachMessage.provider_message_id == msgid,
            ReachMessage.status == MessageStatus.SENT.value,
        )
        .order_by(ReachMessage.id)
        .with_for_update()
    ).all()
    for message in messages:
        row = by_recipient.get(message.address or "")
        status = row.status if row is not None else 0
        if status == 1:
            apply_receipt(session, message=message, outcome="delivered", now=now)
            outcome.delivered += 1
        elif status in WECOM_STATUS_ERRORS:
            apply_receipt(
                session, message=message, outcome="failed", detail=WECOM_STATUS_ERRORS[status], now=now
            )
            outcome.failed += 1
        elif message.sent_at is not None and now - message.sent_at >= confirm_within:
            sender = row.wecom_userid if row is not None else "the staff member"
            detail = f"{sender} did not send mass message {msgid} within {confirm_within.days} days"
            apply_receipt(session, message=message, outcome="failed", detail=detail, now=now)
            outcome.failed += 1
        else:
            outcome.waiting += 1
    return outcome
