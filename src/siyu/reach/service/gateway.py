"""The send gateway: every message — broadcast, journey step, staff-initiated, API — is decided here.

`send` records one `reach_message` row per distinct customer, in the caller's transaction: queued,
deferred (quiet hours) or suppressed with its reason, and an explanation of every channel it tried. The
decisions for one customer are taken holding the lock of that customer's `reach_contact` row, so two
sources deciding at once cannot both pass a cap. Workers send what is queued (`outbox.claim`).
The order of the checks is documented in docs/reach.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.content import service as content_service
from siyu.core import audit, bulk
from siyu.core.db import ARRAY_CHUNK, among, among_chunk, integer_array, is_postgres
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.customers.service import ContactFacts
from siyu.reach.models import (
    BlockedAddress,
    MessageStatus,
    ReachContact,
    ReachMessage,
    Reason,
)
from siyu.reach.service.history import (
    History,
    ListedHistory,
    Question,
    count_history,
    list_history,
    wecom_period,
)
from siyu.reach.service.policy import Policy, get_policy, quiet_until, zone_of
from siyu.workspaces import service as workspaces

_CHUNK = 1000  # values per IN list on SQLite


class Source(StrEnum):
    BROADCAST = "broadcast"  # 群发
    JOURNEY = "journey"  # a journey / SOP step
    STAFF = "staff"  # a member writing to one customer (1:1, not an enterprise mass message)
    API = "api"
    LIVE_CODE = "live_code"  # a live code's welcome message (欢迎语), the reply to the customer's own add


# WeCom's welcome message: send_welcome_msg with the welcome code of one add, within 20 s of it. Only a
# live code's transactional reply uses it; it takes no marketing consent, budget, caps or de-duplication
# by content (each add is its own welcome, de-duplicated by its idempotency key) — docs/reach.md
WELCOME_CHANNEL = "wecom_welcome"
PURPOSES = ("marketing", "transactional")
# the identity kind that holds a channel's address; the webhook channel addresses the customer id
ADDRESS_KIND: dict[str, str | None] = {
    "email": "email",
    "sms": "phone",
    "wecom": "wecom_external_userid",
    WELCOME_CHANNEL: "wecom_external_userid",
    "official_account": "wechat_openid",
    "mini_program": "wechat_openid",
    "phone_call": "phone",
    "webhook": None,
}
REQUIRED_CONTENT: dict[str, tuple[str, ...]] = {
    "email": ("subject", "text"),
    "sms": ("text",),
    "wecom": ("text",),
    WELCOME_CHANNEL: ("text", "sender"),
}
# the channel whose consent a channel's messages follow: a welcome is a WeCom message
CONSENT_CHANNEL = {WELCOME_CHANNEL: "wecom"}


@dataclass
class SendSummary:
    """What one `send` call decided: counts per status (of new decisions), the ids it created, and how
    many customers already had a message under the same idempotency key (decided before; unchanged)."""

    audience: int
    created: int = 0
    existing: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)
    message_ids: list[int] = field(default_factory=list)


@dataclass
class Decision:
    status: MessageStatus
    planned_at: datetime
    channel: str | None = None
    address: str | None = None
    reason: Reason | None = None
    explanation: list[dict[str, Any]] = field(default_factory=list)


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _validate(
    *, source: str, source_ref: str, purpose: str, channels: Sequence[str], content: dict[str, Any], step: str
) -> None:
    if source not in {s.value for s in Source}:
        raise ValidationFailed(
            f"source {source!r} is not known", where="source", hint="broadcast, journey, staff or api"
        )
    if not source_ref or len(source_ref) > 128:
        raise ValidationFailed(
            "source_ref must name what sends (1–128 characters)",
            where="source_ref",
            hint="e.g. the broadcast's id; it is part of each message's idempotency key",
        )
    if len(step) > 128:
        raise ValidationFailed("step is longer than 128 characters", where="step")
    if purpose not in PURPOSES:
        raise ValidationFailed(
            f"purpose {purpose!r} is not known", where="purpose", hint="marketing or transactional"
        )
    if not channels:
        raise ValidationFailed(
            "give at least one channel", where="channel_preference", hint='e.g. ["wecom", "sms"]'
        )
    for position, channel in enumerate(channels):
        if channel not in ADDRESS_KIND:
            raise ValidationFailed(
                f"channel {channel!r} is not one reach can use",
                where=f"channel_preference[{position}]",
                hint=", ".join(ADDRESS_KIND),
            )
        if channel == WELCOME_CHANNEL and (source != Source.LIVE_CODE or purpose != "transactional"):
            raise ValidationFailed(
                f"channel {WELCOME_CHANNEL!r} carries live codes' welcome messages only",
                where=f"channel_preference[{position}]",
                hint="source live_code, purpose transactional: the reply to the customer's own add",
            )
        body = content.get(channel, content.get("default"))
        if not isinstance(body, dict):
            raise ValidationFailed(
                f"no content for channel {channel!r}",
                where=f"content.{channel}",
                hint='give content per channel, e.g. {"sms": {"text": "…"}}, or a "default"',
            )
        for name in REQUIRED_CONTENT.get(channel, ()):
            if not str(body.get(name) or "").strip():
                raise ValidationFailed(f"{channel} content needs {name!r}", where=f"content.{channel}.{name}")
    if len(set(channels)) != len(channels):
        raise ValidationFailed("a channel is named twice", where="channel_preference")


def check_request(
    *,
    source: str,
    source_ref: str,
    purpose: str,
    channels: Sequence[str],
    content: dict[str, Any],
    step: str = "",
) -> None:
    """Refuse what `send` would refuse about the request itself (source, purpose, channels, content of
    every channel), before anything is decided: for callers that store a send to make it later."""
    _validate(
        source=source,
        source_ref=source_ref,
        purpose=purpose,
        channels=list(channels),
        content=content,
        step=step,
    )


def _lock_contacts(session: Session, *, workspace_id: int, customer_ids: Sequence[int]) -> set[int]:
    """Create each customer's contact row if missing and lock it until the transaction ends (in id order,
    so two transactions locking overlapping sets cannot deadlock); returns the customers marked
    do-not-contact. On SQLite the write transaction holds the database's one write lock already."""
    now = utcnow()
    do_not_contact: set[int] = set()
    if is_postgres(session):
        session.flush()  # contact rows added through the ORM in this transaction are written first
        for start in range(0, len(customer_ids), ARRAY_CHUNK):
            chunk = list(customer_ids[start : start + ARRAY_CHUNK])
            session.execute(
                text(
                    "INSERT INTO reach_contact (customer_id, workspace_id, do_not_contact, note, updated_at)"
                    " SELECT c, :workspace_id, false, '', :now FROM unnest(CAST(:ids AS BIGINT[])) AS c"
                    " ON CONFLICT DO NOTHING"
                ),
                {"ids": integer_array(chunk), "workspace_id": workspace_id, "now": now},
            )
        # one statement per chunk: locked in id order, only the flag is read back
        for start in range(0, len(customer_ids), ARRAY_CHUNK):
            chunk = list(customer_ids[start : start + ARRAY_CHUNK])
            contact = ReachContact.__table__.c
            do_not_contact.update(
                customer_id
                for customer_id, flagged in session.connection()
                .execute(
                    select(contact.customer_id, contact.do_not_contact)
                    .where(among(session, contact.customer_id, chunk))
                    .order_by(contact.customer_id)
                    .with_for_update()
                )
                .all()
                if flagged
            )
        return do_not_contact
    rows = [
        {
            "customer_id": c,
            "workspace_id": workspace_id,
            "do_not_contact": False,
            "note": "",
            "updated_at": now,
        }
        for c in customer_ids
    ]
    statement = sqlite_insert(ReachContact).on_conflict_do_nothing()
    for start in range(0, len(rows), _CHUNK):
        session.execute(statement, rows[start : start + _CHUNK])
    for start in range(0, len(customer_ids), _CHUNK):
        part = customer_ids[start : start + _CHUNK]
        do_not_contact.update(
            session.scalars(
                select(ReachContact.customer_id).where(
                    ReachContact.customer_id.in_(part), ReachContact.do_not_contact.is_(True)
                )
            )
        )
    return do_not_contact


# a workspace with no more blocked addresses than this has them all read at once (usually a handful of
# bounced emails), instead of looking up every address of an audience
_FEW_BLOCKED = 20_000


def blocked_addresses(
    session: Session, *, workspace_id: int, addresses: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (channel, address) pairs are blocked (bounced) in this workspace."""
    wanted = set(addresses)
    everything = session.execute(
        select(BlockedAddress.channel, BlockedAddress.address)
        .where(BlockedAddress.workspace_id == workspace_id)
        .limit(_FEW_BLOCKED + 1)
    ).all()
    if len(everything) <= _FEW_BLOCKED:
        return {(channel, address) for channel, address in everything if (channel, address) in wanted}
    found: set[tuple[str, str]] = set()
    values = sorted({a for _, a in wanted})
    size = among_chunk(session)
    for start in range(0, len(values), size):
        for channel, address in session.execute(
            select(BlockedAddress.channel, BlockedAddress.address).where(
                BlockedAddress.workspace_id == workspace_id,
                among(session, BlockedAddress.address, values[start : start + size]),
            )
        ):
            found.add((channel, address))
    return found


def address_for(facts: ContactFacts, channel: str) -> str | None:
    kind = ADDRESS_KIND[channel]
    return str(facts.customer_id) if kind is None else facts.first(kind)


def consent_reason(facts: ContactFacts, channel: str, purpose: str) -> Reason | None:
    """Marketing needs a grant in force for the channel (opt-in); transactional messages go unless the
    customer withdrew transactional consent for it."""
    status = facts.consents.get((CONSENT_CHANNEL.get(channel, channel), purpose))
    if status == "withdrawn":
        return Reason.CONSENT_WITHDRAWN
    if purpose == "marketing" and status != "granted":
        return Reason.NO_CONSENT
    return None


def planned_time(
    *, facts: ContactFacts, policy: Policy, workspace_zone: str, purpose: str, at: datetime
) -> tuple[MessageStatus, datetime]:
    """When a message to this customer would go: at `at`, or deferred to the end of the quiet hours in the
    customer's zone (marketing only). The caps are then counted around this time."""
    if purpose == "marketing":
        zone = zone_of(facts.timezone, workspace_zone)
        until = quiet_until(at, zone, policy.quiet_start, policy.quiet_end)
        if until is not None:
            return MessageStatus.DEFERRED, until
    return MessageStatus.QUEUED, at


def decide(
    *,
    facts: ContactFacts,
    do_not_contact: bool,
    past: History,
    blocked: set[tuple[str, str]],
    policy: Policy,
    workspace_zone: str,
    source: str,
    purpose: str,
    channels: Sequence[str],
    digest: str,
    at: datetime,
    planned: tuple[MessageStatus, datetime] | None = None,
) -> Decision:
    """The gateway's decision for one customer (pure: everything it reads is passed in; `planned`, when
    given, is `planned_time` of the same arguments, computed once)."""
    if not facts.live:
        return Decision(MessageStatus.SUPPRESSED, at, reason=Reason.CUSTOMER_GONE)
    if do_not_contact:
        return Decision(MessageStatus.SUPPRESSED, at, reason=Reason.DO_NOT_CONTACT)
    status, when = planned or planned_time(
        facts=facts, policy=policy, workspace_zone=workspace_zone, purpose=purpose, at=at
    )
    if (
        policy.dedup_hours
        and WELCOME_CHANNEL not in channels
        and past.duplicate(digest, when, timedelta(hours=policy.dedup_hours))
    ):
        return Decision(MessageStatus.SUPPRESSED, when, reason=Reason.DUPLICATE)
    if (
        purpose == "marketing"
        and past.marketing_near(when, timedelta(days=policy.budget_days)) >= policy.marketing_budget
    ):
        return Decision(MessageStatus.SUPPRESSED, when, reason=Reason.BUDGET)
    explanation: list[dict[str, Any]] = []
    for channel in channels:
        reason = _channel_reason(
            facts=facts,
            past=past,
            blocked=blocked,
            policy=policy,
            workspace_zone=workspace_zone,
            source=source,
            purpose=purpose,
            channel=channel,
            planned=when,
        )
        explanation.append({"channel": channel, "reason": reason.value if reason else "chosen"})
        if reason is None:
            return Decision(status, when, channel, address_for(facts, channel), None, explanation)
    first = Reason(explanation[0]["reason"])
    return Decision(MessageStatus.SUPPRESSED, when, reason=first, explanation=explanation)


def _zone(workspace_zone: str) -> ZoneInfo:
    return ZoneInfo(workspace_zone) if workspace_zone else ZoneInfo("Asia/Shanghai")


def _channel_reason(
    *,
    facts: ContactFacts,
    past: History,
    blocked: set[tuple[str, str]],
    policy: Policy,
    workspace_zone: str,
    source: str,
    purpose: str,
    channel: str,
    planned: datetime,
) -> Reason | None:
    address = address_for(facts, channel)
    if address is None:
        # an external userid exists only for a customer who added a member on WeCom
        return Reason.NOT_WECOM_FRIEND if channel == "wecom" else Reason.NO_ADDRESS
    if (channel, address) in blocked:
        return Reason.ADDRESS_BLOCKED
    reason = consent_reason(facts, channel, purpose)
    if reason is not None:
        return reason
    cap = policy.channel_caps.get(channel)
    if (
        cap is not None
        and purpose == "marketing"
        and past.channel_near(channel, planned, timedelta(days=cap["days"])) >= cap["count"]
    ):
        return Reason.CHANNEL_CAP
    if channel == "wecom" and source != Source.STAFF:
        start, end, limit = wecom_period(planned, _zone(workspace_zone), policy.wecom_cap)
        if past.mass_wecom(start, end) >= limit:
            return Reason.PLATFORM_CAP
    return None


def _personalise(
    session: Session,
    *,
    workspace_id: int,
    compiled: content_service.Compiled,
    decisions: dict[int, Decision],
    links: dict[int, dict[str, str]],
    at: datetime,
) -> dict[int, dict[str, Any]]:
    """Render the chosen channel's content for each customer of a chunk that will be sent to (their
    variables loaded in a few queries for the whole chunk). A customer it fails for becomes suppressed
    with `render_failed` and the error, where it is, in the explanation."""
    chosen = [
        c
        for c, d in decisions.items()
        if d.channel and d.status in (MessageStatus.QUEUED, MessageStatus.DEFERRED)
    ]
    if not chosen:
        return {}
    # static content renders alike for everyone: once per channel, without loading any customer's data
    static = compiled.static
    contexts = (
        {}
        if static
        else content_service.render_contexts(session, workspace_id=workspace_id, customer_ids=chosen, now=at)
    )
    rendered: dict[str, dict[str, Any] | content_service.RenderFailed] = {}
    base = content_service.short_link_base()
    bodies: dict[int, dict[str, Any]] = {}
    for customer_id in chosen:
        decision = decisions[customer_id]
        assert decision.channel is not None
        tracker = content_service.Links(base_url=base)
        try:
            if static:
                if decision.channel not in rendered:
                    rendered[decision.channel] = _render_alike(compiled, decision.channel, tracker)
                once = rendered[decision.channel]
                if isinstance(once, content_service.RenderFailed):
                    raise once
                bodies[customer_id] = once
            else:
                context = contexts.get(customer_id, {})
                bodies[customer_id] = compiled.render(decision.channel, context, tracker)
        except content_service.RenderFailed as error:
            decisions[customer_id] = Decision(
                MessageStatus.SUPPRESSED,
                decision.planned_at,
                reason=Reason.RENDER_FAILED,
                explanation=[
                    *decision.explanation,
                    {"channel": decision.channel, "reason": Reason.RENDER_FAILED.value,
                     "error": error.message, "where": error.where, "hint": error.hint},
                ],
            )  # fmt: skip
            continue
        if tracker.tokens:
            links[customer_id] = tracker.tokens
    return bodies


def _render_alike(
    compiled: content_service.Compiled, channel: str, tracker: content_service.Links
) -> dict[str, Any] | content_service.RenderFailed:
    try:
        return compiled.render(channel, {}, tracker)
    except content_service.RenderFailed as error:
        return error


def _store_links(
    session: Session,
    *,
    workspace_id: int,
    source: str,
    source_ref: str,
    keys: dict[int, str],
    links: dict[int, dict[str, str]],
) -> None:
    """The tracked links of the messages just written, now that they have ids."""
    customer_ids = sorted(links)
    rows: list[content_service.LinkRow] = []
    for start in range(0, len(customer_ids), _CHUNK):
        chunk = customer_ids[start : start + _CHUNK]
        by_key = {keys[c]: c for c in chunk}
        for message_id, key in session.execute(
            select(ReachMessage.id, ReachMessage.idempotency_key).where(
                ReachMessage.workspace_id == workspace_id, ReachMessage.idempotency_key.in_(list(by_key))
            )
        ):
            customer_id = by_key[key]
            rows.extend(
                content_service.LinkRow(token, message_id, customer_id, source, source_ref, url)
                for url, token in links[customer_id].items()
            )
    content_service.store_links(session, workspace_id=workspace_id, links=rows)


_UTC_TIME = pl.Datetime("us", "UTC")
_MESSAGE_SCHEMA: dict[str, Any] = {
    "workspace_id": pl.Int64, "customer_id": pl.Int64, "source": pl.Utf8, "source_ref": pl.Utf8,
    "step": pl.Utf8, "idempotency_key": pl.Utf8, "purpose": pl.Utf8, "channel": pl.Utf8,
    "address": pl.Utf8, "content": pl.Utf8, "content_hash": pl.Utf8, "status": pl.Utf8,
    "reason": pl.Utf8, "explanation": pl.Utf8, "planned_at": _UTC_TIME, "due_at": _UTC_TIME,
    "attempts": pl.Int64, "created_at": _UTC_TIME, "updated_at": _UTC_TIME,
}  # fmt: skip


class _MessageRows:
    """The decided messages of one `send`, gathered column by column and written at once: COPY on
    PostgreSQL, one prepared executemany on SQLite (siyu.core.bulk), in the caller's transaction. A body
    or an explanation that many messages share (static content, the same channels tried) is turned into
    JSON once."""

    def __init__(
        self, *, workspace_id: int, source: str, source_ref: str, step: str, purpose: str, digest: str,
        now: datetime,
    ) -> None:  # fmt: skip
        self._constant = {
            "workspace_id": workspace_id, "source": source, "source_ref": source_ref, "step": step,
            "purpose": purpose, "content_hash": digest, "attempts": 0, "created_at": now, "updated_at": now,
        }  # fmt: skip
        self._columns: dict[str, list[Any]] = {
            name: [] for name in _MESSAGE_SCHEMA if name not in self._constant
        }
        self._bodies: dict[int, tuple[Any, str]] = {}  # id(body) → (body, its JSON)
        self._explanations: dict[tuple[tuple[str, str], ...], str] = {}

    def __len__(self) -> int:
        return len(self._columns["customer_id"])

    def _body_json(self, body: dict[str, Any]) -> str:
        known = self._bodies.get(id(body))
        if known is not None and known[0] is body:
            return known[1]
        encoded = json.dumps(body, ensure_ascii=False)
        self._bodies[id(body)] = (body, encoded)
        return encoded

    def _explanation_json(self, explanation: list[dict[str, Any]]) -> str:
        if not all(len(step) == 2 for step in explanation):  # with an error: this message's own
            return json.dumps(explanation, ensure_ascii=False)
        key = tuple((step["channel"], step["reason"]) for step in explanation)
        encoded = self._explanations.get(key)
        if encoded is None:
            encoded = self._explanations[key] = json.dumps(explanation, ensure_ascii=False)
        return encoded

    def add(
        self, *, customer_id: int, idempotency_key: str, channel: str | None, address: str | None,
        body: dict[str, Any], status: str, reason: str | None, explanation: list[dict[str, Any]],
        planned_at: datetime, due_at: datetime | None,
    ) -> None:  # fmt: skip
        columns = self._columns
        columns["customer_id"].append(customer_id)
        columns["idempotency_key"].append(idempotency_key)
        columns["channel"].append(channel)
        columns["address"].append(address)
        columns["content"].append(self._body_json(body))
        columns["status"].append(status)
        columns["reason"].append(reason)
        columns["explanation"].append(self._explanation_json(explanation))
        columns["planned_at"].append(planned_at)
        columns["due_at"].append(due_at)

    def write(self, session: Session) -> None:
        count = len(self)
        if not count:
            return
        session.flush()
        data = {
            name: self._columns[name] if name in self._columns else [self._constant[name]] * count
            for name in _MESSAGE_SCHEMA
        }
        bulk.insert_frame(session, ReachMessage.__tablename__, pl.DataFrame(data, schema=_MESSAGE_SCHEMA))


def _existing_keys(session: Session, *, workspace_id: int, keys: list[str]) -> set[str]:
    """Which of these idempotency keys already have a message (looked up in the unique index)."""
    existing: set[str] = set()
    size = among_chunk(session)
    for start in range(0, len(keys), size):
        existing.update(
            session.execute(
                select(ReachMessage.idempotency_key).where(
                    ReachMessage.workspace_id == workspace_id,
                    among(session, ReachMessage.idempotency_key, keys[start : start + size]),
                )
            )
            .scalars()
            .all()
        )
    return existing


_NO_HISTORY = ListedHistory()
_NO_BODY: dict[str, Any] = {}  # a message not sent has no content (one object: its JSON made once)


def _past_of(
    session: Session,
    *,
    workspace_id: int,
    customer_ids: list[int],
    planned: dict[int, tuple[MessageStatus, datetime]],
    policy: Policy,
    workspace_zone: str,
    purpose: str,
    digest: str,
    start: datetime,
    end: datetime,
) -> Mapping[int, History]:
    """The customers' earlier messages, as `decide` asks about them: counted by PostgreSQL at each one's
    planned time (one row back per customer), listed on SQLite."""
    if not is_postgres(session):
        return list_history(
            session, workspace_id=workspace_id, customer_ids=customer_ids, start=start, end=end
        )
    zone = _zone(workspace_zone)
    periods: dict[datetime, tuple[datetime, datetime]] = {}
    questions = []
    for customer_id in customer_ids:
        when = planned[customer_id][1]
        if when not in periods:
            period_start, period_end, _ = wecom_period(when, zone, policy.wecom_cap)
            periods[when] = (period_start, period_end)
        questions.append(Question(customer_id, when, periods[when]))
    return count_history(
        session,
        workspace_id=workspace_id,
        questions=questions,
        digest=digest,
        dedup_window=timedelta(hours=policy.dedup_hours),
        budget_window=timedelta(days=policy.budget_days),
        channel_windows={c: timedelta(days=cap["days"]) for c, cap in policy.channel_caps.items()},
        start=start,
        end=end,
    )


def message_key(
    *, source: str, source_ref: str, step: str, idempotency_key: str | None, customer_id: int
) -> str:
    base = idempotency_key or ":".join(part for part in (source, source_ref, step) if part)
    return f"{base}:{customer_id}"


def send(
    session: Session,
    *,
    workspace_id: int,
    source: str,
    source_ref: str,
    customer_ids: Iterable[int],
    content: dict[str, Any],
    purpose: str,
    channel_preference: Sequence[str],
    step: str = "",
    idempotency_key: str | None = None,
    send_at: datetime | None = None,
    personalise: bool = False,
    actor_user_id: int | None = None,
    now: datetime | None = None,
) -> SendSummary:
    """Decide one message per distinct customer and write it to the outbox, in the caller's transaction.

    Each message's idempotency key is `{idempotency_key or source:source_ref[:step]}:{customer_id}`: a
    repeated call (a client or an engine retrying) decides nothing again for customers that already have
    one. `send_at` schedules the messages (a timer row: a worker sends them when due). Ids that name no
    customer of the workspace are refused, and nothing is written.

    With `personalise`, the content's strings are templates (siyu.content): each message's content is
    rendered for its customer here, and the outbox holds what the customer receives, with its tracked
    links stored. A customer it cannot be rendered for is suppressed (`render_failed`, the error in the
    explanation); a template that does not compile refuses the whole call.
    """
    channels = list(channel_preference)
    _validate(
        source=source, source_ref=source_ref, purpose=purpose, channels=channels, content=content, step=step
    )
    now = now or utcnow()
    if send_at is not None and send_at.tzinfo is None:
        raise ValidationFailed(
            "send_at has no time zone", where="send_at", hint="e.g. 2026-06-01T10:00:00+08:00"
        )
    at = max(now, send_at) if send_at is not None else now
    compiled = (
        content_service.compile_for_send(session, workspace_id=workspace_id, content=content)
        if personalise
        else None
    )
    ids = sorted(dict.fromkeys(int(c) for c in customer_ids))
    summary = SendSummary(audience=len(ids))
    if not ids:
        return summary
    if is_postgres(session):
        session.execute(text("SET LOCAL jit = off"))
    facts = customers.reach_facts(
        session,
        workspace_id=workspace_id,
        customer_ids=ids,
        kinds={kind for channel in channels if (kind := ADDRESS_KIND[channel]) is not None},
        consents={(CONSENT_CHANNEL.get(channel, channel), purpose) for channel in channels},
    )
    missing = [c for c in ids if c not in facts]
    if missing:
        raise NotFound(
            f"{len(missing)} customer id(s) name no customer of this workspace: {missing[:10]}",
            where="customer_ids",
            hint="send only to customers of this workspace",
        )
    keys = {
        c: message_key(
            source=source, source_ref=source_ref, step=step, idempotency_key=idempotency_key, customer_id=c
        )
        for c in ids
    }
    not_to_contact = _lock_contacts(session, workspace_id=workspace_id, customer_ids=ids)
    existing = _existing_keys(session, workspace_id=workspace_id, keys=list(keys.values()))
    todo = [c for c in ids if keys[c] not in existing]
    summary.existing = len(ids) - len(todo)
    if not todo:
        return summary
    policy = get_policy(session, workspace_id=workspace_id)
    workspace_zone = workspaces.get_workspace(session, workspace_id=workspace_id).timezone
    reach = max(timedelta(days=max(policy.budget_days, 32)), timedelta(hours=policy.dedup_hours))
    for cap in policy.channel_caps.values():
        reach = max(reach, timedelta(days=cap["days"]))
    digest = content_hash(content)
    # when each message would go depends on the customer's zone alone: computed once per zone
    by_zone: dict[str | None, tuple[MessageStatus, datetime]] = {}
    planned: dict[int, tuple[MessageStatus, datetime]] = {}
    for customer_id in todo:
        zone = facts[customer_id].timezone
        if zone not in by_zone:
            by_zone[zone] = planned_time(
                facts=facts[customer_id], policy=policy, workspace_zone=workspace_zone, purpose=purpose, at=at
            )
        planned[customer_id] = by_zone[zone]
    past: Mapping[int, History] = _past_of(
        session,
        workspace_id=workspace_id,
        customer_ids=todo,
        planned=planned,
        policy=policy,
        workspace_zone=workspace_zone,
        purpose=purpose,
        digest=digest,
        start=at - reach,
        end=at + timedelta(days=1) + reach,
    )
    addresses = [(ch, a) for c in todo for ch in channels if (a := address_for(facts[c], ch)) is not None]
    blocked = blocked_addresses(session, workspace_id=workspace_id, addresses=addresses)
    rows = _MessageRows(
        workspace_id=workspace_id, source=source, source_ref=source_ref, step=step, purpose=purpose,
        digest=digest, now=now,
    )  # fmt: skip
    links: dict[int, dict[str, str]] = {}  # customer → url → token, of personalised messages
    for offset in range(0, len(todo), _CHUNK):
        chunk = todo[offset : offset + _CHUNK]
        decisions = {
            customer_id: decide(
                facts=facts[customer_id],
                do_not_contact=customer_id in not_to_contact,
                past=past.get(customer_id, _NO_HISTORY),
                blocked=blocked,
                policy=policy,
                workspace_zone=workspace_zone,
                source=source,
                purpose=purpose,
                channels=channels,
                digest=digest,
                at=at,
                planned=planned[customer_id],
            )
            for customer_id in chunk
        }
        bodies: dict[int, dict[str, Any]] = {}
        if compiled is not None:
            bodies = _personalise(
                session, workspace_id=workspace_id, compiled=compiled, decisions=decisions, links=links, at=at
            )
        for customer_id in chunk:
            decision = decisions[customer_id]
            if decision.channel and customer_id in bodies:
                body = bodies[customer_id]
            elif decision.channel:
                body = content.get(decision.channel, content.get("default", {}))
            else:
                body = _NO_BODY
            status = decision.status.value
            reason = decision.reason.value if decision.reason else None
            pending = decision.status in (MessageStatus.QUEUED, MessageStatus.DEFERRED)
            rows.add(
                customer_id=customer_id,
                idempotency_key=keys[customer_id],
                channel=decision.channel,
                address=decision.address,
                body=body,
                status=status,
                reason=reason,
                explanation=decision.explanation,
                planned_at=decision.planned_at,
                due_at=decision.planned_at if pending else None,
            )
            summary.by_status[status] = summary.by_status.get(status, 0) + 1
            if reason is not None:
                summary.by_reason[reason] = summary.by_reason.get(reason, 0) + 1
    rows.write(session)
    summary.created = len(rows)
    if links:
        _store_links(
            session, workspace_id=workspace_id, source=source, source_ref=source_ref,
            keys=keys, links=links,
        )  # fmt: skip
    summary.message_ids = (
        list(
            session.scalars(
                select(ReachMessage.id)
                .where(
                    ReachMessage.workspace_id == workspace_id,
                    ReachMessage.source == source,
                    ReachMessage.source_ref == source_ref,
                )
                .where(ReachMessage.idempotency_key.in_([keys[c] for c in todo[:_CHUNK]]))
                .order_by(ReachMessage.id)
            )
        )
        if len(todo) <= _CHUNK
        else []
    )
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="reach.send",
        target_type="reach_source",
        target_id=f"{source}:{source_ref}"[:64],
        detail={
            "step": step,
            "purpose": purpose,
            "channels": channels,
            "audience": len(ids),
            "created": len(rows),
            "by_status": summary.by_status,
            "by_reason": summary.by_reason,
        },
    )
    return summary


def as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
