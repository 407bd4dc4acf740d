"""Mass messages (企业群发, add_msg_template) to customers or customer groups, with the staff's
confirmation and each recipient's result tracked through the send-result APIs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import audit
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom.client import WecomClient
from siyu.wecom.models import WecomFollow, WecomMassMessage, WecomMassMessageResult
from siyu.wecom.service.contacts import message_content
from siyu.wecom.service.settings import wecom_client

MAX_RECIPIENTS = 10000  # add_msg_template takes at most 10000 external_userid per call
MAX_CHATS = 2000  # and at most 2000 chat_id_list entries
PAGE = 1000
FOLLOW_FOR = timedelta(days=3)  # staff confirm a mass message within days, if ever
POLL_EVERY = timedelta(minutes=5)


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


# --- mass messages ---------------------------------------------------------------------------------


def _external_userids(
    session: Session, *, workspace_id: int, customer_ids: list[int], sender: str | None
) -> list[str]:
    query = select(WecomFollow.external_userid).where(
        WecomFollow.workspace_id == workspace_id,
        WecomFollow.customer_id.in_(customer_ids),
        WecomFollow.removed_at.is_(None),
    )
    if sender:
        query = query.where(WecomFollow.wecom_userid == sender)
    return list(dict.fromkeys(session.scalars(query)))


def send_mass_message(
    session: Session,
    *,
    workspace_id: int,
    actor_user_id: int | None,
    chat_type: str = "single",
    text: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    customer_ids: list[int] | None = None,
    external_userids: list[str] | None = None,
    sender: str | None = None,
    chat_ids: list[str] | None = None,
    request_key: str | None = None,
    client: WecomClient | None = None,
) -> WecomMassMessage:
    """Create a mass message task (add_msg_template) and record it with its msgid and fail_list.

    `single`: to customers, named by siyu id (sent to those who are WeCom friends) or by external
    userid; `group`: to the customer groups `sender` owns (all, or those of `chat_ids`). Staff then confirm it in WeCom; poll the
    results with `poll_mass_message_results`. With `request_key`, a retried call returns the task
    created the first time instead of creating a second one.
    """
    if request_key:
        earlier = session.scalar(
            select(WecomMassMessage).where(
                WecomMassMessage.workspace_id == workspace_id, WecomMassMessage.request_key == request_key
            )
        )
        if earlier is not None:
            return earlier
    if chat_type not in ("single", "group"):
        raise ValidationFailed(
            f"chat_type {chat_type!r}", where="chat_type", hint="single (customers) or group"
        )
    body: dict[str, Any] = {"chat_type": chat_type, **message_content(text, attachments)}
    if chat_type == "group":
        if not sender:
            raise ValidationFailed(
                "a mass message to groups needs its sender", where="sender", hint="a WeCom userid"
            )
        if chat_ids:
            if len(chat_ids) > MAX_CHATS:
                raise ValidationFailed(
                    f"{len(chat_ids)} groups; WeCom takes {MAX_CHATS} per task", where="chat_ids"
                )
            body["chat_id_list"] = list(dict.fromkeys(chat_ids))
    else:
        recipients = list(external_userids or [])
        if customer_ids:
            recipients += _external_userids(
                session, workspace_id=workspace_id, customer_ids=customer_ids, sender=sender
            )
        recipients = list(dict.fromkeys(recipients))
        if not recipients:
            raise ValidationFailed(
                "none of the recipients is a WeCom friend",
                where="customer_ids",
                hint="only friends can be reached",
            )
        if len(recipients) > MAX_RECIPIENTS:
            raise ValidationFailed(
                f"{len(recipients)} recipients; WeCom takes {MAX_RECIPIENTS} per task", where="customer_ids"
            )
        body["external_userid"] = recipients
    if sender:
        body["sender"] = sender
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        answer = wecom.post("/cgi-bin/externalcontact/add_msg_template", body)
    finally:
        if own:
            wecom.close()
    message = WecomMassMessage(
        workspace_id=workspace_id,
        msgid=answer["msgid"],
        request_key=request_key,
        chat_type=chat_type,
        sender=sender,
        request=body,
        fail_list=list(answer.get("fail_list") or []),
        created_by_user_id=actor_user_id,
        created_at=utcnow(),
    )
    session.add(message)
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="wecom.mass_message_created",
        target_type="wecom_mass_message",
        target_id=message.id,
        detail={
            "msgid": message.msgid,
            "chat_type": chat_type,
            "recipients": len(body.get("external_userid", [])),
        },
    )
    return message


def get_mass_message(session: Session, *, workspace_id: int, message_id: int) -> WecomMassMessage:
    message = session.get(WecomMassMessage, message_id)
    if message is None or message.workspace_id != workspace_id:
        raise NotFound(f"mass message {message_id} does not exist in this workspace", where="message_id")
    return message


@dataclass(frozen=True)
class MassMessageStatus:
    """Staff who confirmed (sent) the task, and recipients by status (0 not sent, 1 sent, 2 not a
    friend, 3 already got another mass message today)."""

    staff_total: int
    staff_sent: int
    recipients_by_status: dict[int, int]


def _upsert_result(
    session: Session, message: WecomMassMessage, userid: str, recipient: str, row: dict[str, Any]
) -> None:
    result = session.scalar(
        select(WecomMassMessageResult).where(
            WecomMassMessageResult.message_id == message.id,
            WecomMassMessageResult.wecom_userid == userid,
            WecomMassMessageResult.recipient == recipient,
        )
    )
    if result is None:
        result = WecomMassMessageResult(
            workspace_id=message.workspace_id, message_id=message.id, wecom_userid=userid, recipient=recipient
        )
        session.add(result)
    result.status = int(row.get("status", 0))
    result.send_time = _ts(row.get("send_time"))


@dataclass(frozen=True)
class RecipientResult:
    """One row of get_groupmsg_send_result: staff member, recipient (external userid or chat id), status
    (0 not sent yet, 1 sent, 2 not a friend, 3 already got another mass message that day)."""

    wecom_userid: str
    recipient: str
    status: int
    send_time: datetime | None


@dataclass(frozen=True)
class TaskResults:
    """What WeCom says of one mass message: each staff member's task status (0 not sent, 1 sent) and
    each recipient's result."""

    staff: dict[str, int]
    recipients: list[RecipientResult]


def _fetch_results(wecom: WecomClient, msgid: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The task list (get_groupmsg_task) and the send list of every staff member of it, all pages."""
    tasks: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = wecom.post(
            "/cgi-bin/externalcontact/get_groupmsg_task", {"msgid": msgid, "limit": PAGE, "cursor": cursor}
        )
        tasks += page.get("task_list") or []
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    sends: list[dict[str, Any]] = []
    for task in tasks:
        cursor = ""
        while True:
            page = wecom.post(
                "/cgi-bin/externalcontact/get_groupmsg_send_result",
                {"msgid": msgid, "userid": task["userid"], "limit": PAGE, "cursor": cursor},
            )
            sends += [{"userid": task["userid"], **row} for row in page.get("send_list") or []]
            cursor = page.get("next_cursor") or ""
            if not cursor:
                break
    return tasks, sends


def mass_message_results(
    session: Session, *, workspace_id: int, msgid: str, client: WecomClient | None = None
) -> TaskResults:
    """Ask WeCom for the results of a mass message by its msgid (also one siyu did not record, e.g. one
    the reach channel created); reads only, stores nothing."""
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        tasks, sends = _fetch_results(wecom, msgid)
    finally:
        if own:
            wecom.close()
    return TaskResults(
        staff={str(t["userid"]): int(t.get("status", 0)) for t in tasks},
        recipients=[
            RecipientResult(
                wecom_userid=str(row["userid"]),
                recipient=str(row.get("external_userid") or row.get("chat_id") or ""),
                status=int(row.get("status", 0)),
                send_time=_ts(row.get("send_time")),
            )
            for row in sends
        ],
    )


def poll_mass_message_results(
    session: Session,
    *,
    workspace_id: int,
    message_id: int,
    now: datetime | None = None,
    client: WecomClient | None = None,
) -> MassMessageStatus:
    """Read which staff sent the task (get_groupmsg_task) and its result per recipient
    (get_groupmsg_send_result), and keep them; safe to repeat."""
    message = get_mass_message(session, workspace_id=workspace_id, message_id=message_id)
    wecom, own = wecom_client(session, workspace_id, client)
    try:
        tasks, sends = _fetch_results(wecom, message.msgid)
    finally:
        if own:
            wecom.close()
    for task in tasks:
        _upsert_result(session, message, task["userid"], "", task)
    for row in sends:
        recipient = row.get("external_userid") or row.get("chat_id") or ""
        _upsert_result(session, message, row["userid"], recipient, row)
    message.polled_at = now or utcnow()
    session.flush()
    rows = list(
        session.scalars(select(WecomMassMessageResult).where(WecomMassMessageResult.message_id == message.id))
    )
    staff = [r for r in rows if r.recipient == ""]
    by_status: dict[int, int] = {}
    for r in rows:
        if r.recipient:
            by_status[r.status] = by_status.get(r.status, 0) + 1
    return MassMessageStatus(
        staff_total=len(staff),
        staff_sent=sum(1 for r in staff if r.status == 1),
        recipients_by_status=by_status,
    )


def mark_mass_message_polled(session: Session, *, workspace_id: int, message_id: int, now: datetime) -> None:
    """Record a poll WeCom refused or did not answer, so the next try waits its turn."""
    get_mass_message(session, workspace_id=workspace_id, message_id=message_id).polled_at = now


def mass_messages_to_poll(session: Session, *, workspace_id: int, now: datetime) -> list[int]:
    """Mass messages created in the last 3 days whose results were not read in the last 5 minutes."""
    return list(
        session.scalars(
            select(WecomMassMessage.id)
            .where(
                WecomMassMessage.workspace_id == workspace_id,
                WecomMassMessage.created_at >= now - FOLLOW_FOR,
                (WecomMassMessage.polled_at.is_(None)) | (WecomMassMessage.polled_at <= now - POLL_EVERY),
            )
            .order_by(WecomMassMessage.id)
        )
    )


@dataclass(frozen=True)
class StoredResults:
    """What the last poll kept of one mass message: the staff task's status (0 not sent, 1 sent) and
    each recipient's (external userid or chat id → status)."""

    staff: dict[str, int]
    recipients: dict[str, int]
    polled_at: datetime | None


def stored_results(
    session: Session, *, workspace_id: int, message_ids: list[int]
) -> dict[int, StoredResults]:
    """The kept results of the given mass messages (no call to WeCom)."""
    if not message_ids:
        return {}
    polled = dict(
        session.execute(
            select(WecomMassMessage.id, WecomMassMessage.polled_at).where(
                WecomMassMessage.workspace_id == workspace_id, WecomMassMessage.id.in_(message_ids)
            )
        )
        .tuples()
        .all()
    )
    found: dict[int, StoredResults] = {
        i: StoredResults(staff={}, recipients={}, polled_at=at) for i, at in polled.items()
    }
    for row in session.scalars(
        select(WecomMassMessageResult).where(
            WecomMassMessageResult.workspace_id == workspace_id,
            WecomMassMessageResult.message_id.in_(list(found)),
        )
    ):
        target = found[row.message_id]
        if row.recipient:
            target.recipients[row.recipient] = row.status
        else:
            target.staff[row.wecom_userid] = row.status
    return found
