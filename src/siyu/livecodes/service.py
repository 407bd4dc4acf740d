"""Live-code verbs: create and change codes and their staff, take them out of use, find them.

Scans of the landing page are in scans.py, adds and deletions reported by WeCom in attribution.py,
the figures in stats.py.
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.channels import service as channels
from siyu.channels.models import SourceType
from siyu.core import audit, domain_events
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.livecodes.assignment import Strategy
from siyu.livecodes.models import LiveCode, LiveCodeStaff
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.tags import service as tags
from siyu.workspaces import service as workspaces


class Placement(StrEnum):
    STORE_TABLE = "store_table"
    POSTER = "poster"
    PARCEL_INSERT = "parcel_insert"
    AD = "ad"
    EVENT = "event"
    OTHER = "other"


TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")
STATE_PREFIX = "lc"
DEFAULT_CHANNEL_KEY = "wecom-live-code"
MAX_STAFF = 200
MAX_WELCOME = 4000
WECOM_REMARK_MAX = 30  # add_contact_way: "remark … 不超过30个字符"
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)$")
NOT_FOUND_MESSAGE = "this live code does not exist or is no longer in use"


def state_of(token: str) -> str:
    """The WeCom `state` of a code (≤ 30 characters): a fixed prefix and the token's first 16
    characters (96 random bits), so that it names one code and can be matched without a lookup table."""
    return f"{STATE_PREFIX}{token[:16]}"


def landing_path(code: LiveCode) -> str:
    return f"/l/{code.token}"


def landing_url(base_url: str, code: LiveCode) -> str:
    """The absolute landing URL a code's QR carries, on the site at `base_url`."""
    return base_url.rstrip("/") + landing_path(code)


def _parse_hours(text: str | None, *, where: str) -> tuple[int | None, int | None]:
    if text is None or not text.strip():
        return None, None
    found = _HOURS.match(text.strip())
    if not found:
        raise ValidationFailed(f"{text!r} are not working hours", where=where, hint='e.g. "09:00-18:00"')
    start = int(found.group(1)) * 60 + int(found.group(2))
    end = int(found.group(3)) * 60 + int(found.group(4))
    if end > 24 * 60 or start == end:
        raise ValidationFailed(f"{text!r} is an empty or impossible shift", where=where, hint="00:00–24:00")
    return start, end % (24 * 60) if end == 24 * 60 and start != 0 else end


def hours_text(staff: LiveCodeStaff) -> str | None:
    if staff.start_minute is None or staff.end_minute is None:
        return None
    return "{:02d}:{:02d}-{:02d}:{:02d}".format(
        *divmod(staff.start_minute, 60), *divmod(staff.end_minute, 60)
    )


def _check_staff(session: Session, *, workspace_id: int, staff: list[StaffIn]) -> None:
    if not staff or all(s.is_backup for s in staff):
        raise ValidationFailed(
            "a live code needs at least one staff member who is not a backup",
            where="staff",
            hint="add a member and leave 'backup' unticked",
        )
    if len(staff) > MAX_STAFF:
        raise ValidationFailed(
            f"{len(staff)} staff members are too many", where="staff", hint=f"≤ {MAX_STAFF}"
        )
    members = {m.user_id for m in auth.list_members(session, workspace_id=workspace_id)}
    seen: set[int] = set()
    for i, s in enumerate(staff):
        where = f"staff[{i}]"
        if s.user_id not in members:
            raise ValidationFailed(
                f"user {s.user_id} is not an active member of this workspace",
                where=f"{where}.user_id",
                hint="pick staff from the workspace's members",
            )
        if s.user_id in seen:
            raise ValidationFailed(f"user {s.user_id} is listed twice", where=f"{where}.user_id")
        seen.add(s.user_id)
        if not 1 <= s.weight <= 100:
            raise ValidationFailed(
                f"weight {s.weight} is out of range", where=f"{where}.weight", hint="1–100"
            )
        if s.daily_cap is not None and not 1 <= s.daily_cap <= 100_000:
            raise ValidationFailed(
                f"daily cap {s.daily_cap} is out of range",
                where=f"{where}.daily_cap",
                hint="1–100000, or none",
            )
        days = s.weekdays.strip()
        if not days or any(d not in "1234567" for d in days) or len(set(days)) != len(days):
            raise ValidationFailed(
                f"{s.weekdays!r} are not weekdays",
                where=f"{where}.weekdays",
                hint='ISO digits, "12345" = Mon–Fri',
            )
        _parse_hours(s.hours, where=f"{where}.hours")
        if s.contact_qr_url and not re.match(r"^https://\S{1,490}$", s.contact_qr_url):
            raise ValidationFailed(
                "the contact QR must be an https URL", where=f"{where}.contact_qr_url", hint="https://…"
            )


def _default_channel_id(session: Session, *, actor: Actor) -> int:
    for channel in channels.list_channels(session, workspace_id=actor.workspace_id):
        if channel.key == DEFAULT_CHANNEL_KEY:
            return channel.id
    return channels.create_channel(
        session,
        workspace_id=actor.workspace_id,
        key=DEFAULT_CHANNEL_KEY,
        name="企微活码",
        source_type=SourceType.WECOM_LIVE_CODE,
        actor_user_id=actor.user_id,
    ).id


def _checked(session: Session, *, actor: Actor, spec: LiveCodeIn) -> tuple[str, int]:
    name = spec.name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("give the live code a name of 1–200 characters", where="name")
    try:
        Placement(spec.placement)
    except ValueError:
        raise ValidationFailed(
            f"{spec.placement!r} is not a placement",
            where="placement",
            hint=", ".join(p.value for p in Placement),
        ) from None
    if spec.channel_id is None:
        channel_id = _default_channel_id(session, actor=actor)
    else:
        channel = channels.get_channel(session, workspace_id=actor.workspace_id, channel_id=spec.channel_id)
        if channel.source_type != SourceType.WECOM_LIVE_CODE or channel.archived_at is not None:
            raise ValidationFailed(
                f"channel {channel.key!r} is not a live channel of source type {SourceType.WECOM_LIVE_CODE.value}",
                where="channel_id",
                hint="pick a WeCom live-code channel, or leave it empty for the default one",
            )
        channel_id = channel.id
    if spec.store_id is not None:
        channels.get_store(session, workspace_id=actor.workspace_id, store_id=spec.store_id)
    for position, tag_id in enumerate(spec.auto_tag_ids):
        try:
            tags.get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
        except NotFound:
            raise ValidationFailed(
                f"no tag {tag_id} in this workspace", where=f"auto_tag_ids[{position}]"
            ) from None
    if len(spec.welcome_text) > MAX_WELCOME:
        raise ValidationFailed(
            f"the welcome message has {len(spec.welcome_text)} characters",
            where="welcome_text",
            hint=f"≤ {MAX_WELCOME}",
        )
    if not 0 <= spec.cost_cents <= 10**13:
        raise ValidationFailed(f"cost {spec.cost_cents} is out of range", where="cost_cents", hint="≥ 0")
    if len(spec.wecom_remark.strip()) > WECOM_REMARK_MAX:
        raise ValidationFailed(
            f"the WeCom remark has {len(spec.wecom_remark.strip())} characters",
            where="wecom_remark",
            hint=f"WeCom keeps at most {WECOM_REMARK_MAX}",
        )
    _check_staff(session, workspace_id=actor.workspace_id, staff=spec.staff)
    return name, channel_id


def mark_wecom_due(row: LiveCodeStaff) -> None:
    """The member's WeCom contact way must be pushed again, at once (an edit clears any backoff)."""
    row.wecom_version = (row.wecom_version or 0) + 1
    row.wecom_retry_at = None
    row.wecom_attempts = 0


def _replace_staff(session: Session, *, code: LiveCode, staff: list[StaffIn], wecom_changed: bool) -> None:
    """Set the code's staff list. Rows are kept by member (their WeCom way and config_id with them); a
    member taken off with a way in WeCom (or an add that may have made one) stays as a removed row until
    the worker has deleted it; `wecom_changed`: remark or skip_verify changed, every way is updated."""
    rows = {
        r.user_id: r
        for r in session.scalars(select(LiveCodeStaff).where(LiveCodeStaff.live_code_id == code.id))
    }
    kept = {s.user_id for s in staff}
    now = utcnow()
    for user_id, gone in rows.items():
        if user_id in kept or gone.removed_at is not None:
            continue
        if gone.wecom_config_id is None and gone.wecom_adding_since is None:
            session.delete(gone)
        else:
            gone.removed_at = now
            mark_wecom_due(gone)
    for position, s in enumerate(staff):
        start, end = _parse_hours(s.hours, where=f"staff[{position}].hours")
        row = rows.get(s.user_id)
        if row is None:
            row = LiveCodeStaff(
                workspace_id=code.workspace_id,
                live_code_id=code.id,
                user_id=s.user_id,
                wecom_version=1,
                wecom_synced_version=0,
                wecom_attempts=0,
            )
            session.add(row)
        elif row.removed_at is not None or wecom_changed:
            row.removed_at = None  # back on the code: its way (if still in WeCom) is updated, not re-added
            mark_wecom_due(row)
        row.position = position
        row.weight = s.weight
        row.daily_cap = s.daily_cap
        row.is_backup = s.is_backup
        row.is_online = s.is_online
        row.weekdays = "".join(sorted(s.weekdays.strip()))
        row.start_minute, row.end_minute = start, end
        row.current_weight = 0
        row.contact_qr_url = s.contact_qr_url or None
    session.flush()


def cost_source_key(code: LiveCode) -> str:
    """The channel cost record that carries a code's cost (`channels.book_source_cost`)."""
    return f"live_code:{code.id}"


def _book_cost(session: Session, *, actor: Actor, code: LiveCode) -> None:
    """A code's cost is money spent on its channel: one cost record dated the day the code was made
    (in the workspace's calendar), so channel ROI and CAC count it."""
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=code.workspace_id).timezone)
    channels.book_source_cost(
        session,
        workspace_id=code.workspace_id,
        source_key=cost_source_key(code),
        channel_id=code.channel_id,
        day=code.created_at.astimezone(zone).date(),
        amount_cents=code.cost_cents,
        note=f"活码 {code.name}"[:500],
        actor_user_id=actor.user_id,
    )


def create_live_code(session: Session, *, actor: Actor, spec: LiveCodeIn) -> LiveCode:
    """A new live code with its staff; its token (landing URL) and state never change."""
    actor.require(Permission.WRITE)
    name, channel_id = _checked(session, actor=actor, spec=spec)
    token = secrets.token_urlsafe(16)
    now = utcnow()
    code = LiveCode(
        workspace_id=actor.workspace_id,
        token=token,
        state=state_of(token),
        name=name,
        placement=spec.placement,
        channel_id=channel_id,
        store_id=spec.store_id,
        strategy=Strategy(spec.strategy).value,
        rr_cursor=0,
        auto_tag_ids=list(dict.fromkeys(spec.auto_tag_ids)),
        welcome_text=spec.welcome_text.strip(),
        cost_cents=spec.cost_cents,
        wecom_remark=spec.wecom_remark.strip(),
        wecom_skip_verify=spec.wecom_skip_verify,
        is_active=True,
        created_by_user_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(code)
    session.flush()
    _replace_staff(session, code=code, staff=spec.staff, wecom_changed=False)
    _book_cost(session, actor=actor, code=code)
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="livecode.create",
        target_type="live_code",
        target_id=code.id,
        detail={"name": name, "placement": spec.placement, "staff": [s.user_id for s in spec.staff]},
    )
    domain_events.record(
        session,
        workspace_id=actor.workspace_id,
        type=DomainEventType.LIVECODE_CREATED,
        customer_id=None,
        payload={"live_code_id": code.id, "channel_id": channel_id},
    )
    return code


def update_live_code(session: Session, *, actor: Actor, live_code_id: int, spec: LiveCodeIn) -> LiveCode:
    """Change a code's settings and staff; the rotation starts afresh with the new staff list."""
    actor.require(Permission.WRITE)
    code = get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id, lock=True)
    name, channel_id = _checked(session, actor=actor, spec=spec)
    code.name, code.placement, code.channel_id, code.store_id = (
        name,
        spec.placement,
        channel_id,
        spec.store_id,
    )
    code.strategy = Strategy(spec.strategy).value
    code.rr_cursor = 0
    code.auto_tag_ids = list(dict.fromkeys(spec.auto_tag_ids))
    code.welcome_text = spec.welcome_text.strip()
    code.cost_cents = spec.cost_cents
    remark = spec.wecom_remark.strip()
    wecom_changed = (code.wecom_remark, code.wecom_skip_verify) != (remark, spec.wecom_skip_verify)
    code.wecom_remark, code.wecom_skip_verify = remark, spec.wecom_skip_verify
    code.updated_at = utcnow()
    _replace_staff(session, code=code, staff=spec.staff, wecom_changed=wecom_changed)
    _book_cost(session, actor=actor, code=code)
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="livecode.update",
        target_type="live_code",
        target_id=code.id,
        detail={"name": name, "staff": [s.user_id for s in spec.staff]},
    )
    return code


def set_active(session: Session, *, actor: Actor, live_code_id: int, active: bool) -> LiveCode:
    """Take a code out of use (its landing page then answers 404, like an unknown code, and the worker
    deletes its WeCom ways) or back (the ways are made again)."""
    actor.require(Permission.WRITE)
    code = get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id, lock=True)
    if code.is_active != active:
        code.is_active = active
        code.updated_at = utcnow()
        for row in session.scalars(select(LiveCodeStaff).where(LiveCodeStaff.live_code_id == code.id)):
            mark_wecom_due(row)
        audit.record(
            session,
            workspace_id=actor.workspace_id,
            actor_user_id=actor.user_id,
            action="livecode.enable" if active else "livecode.disable",
            target_type="live_code",
            target_id=code.id,
        )
    return code


def set_staff_online(
    session: Session, *, actor: Actor, live_code_id: int, user_id: int, online: bool
) -> None:
    """A staff member goes online or offline on one code (offline members take no scans)."""
    actor.require(Permission.WRITE)
    get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id)
    row = session.scalar(
        select(LiveCodeStaff).where(
            LiveCodeStaff.live_code_id == live_code_id,
            LiveCodeStaff.user_id == user_id,
            LiveCodeStaff.removed_at.is_(None),
        )
    )
    if row is None:
        raise NotFound(f"user {user_id} is not staff of live code {live_code_id}", where="user_id")
    if row.is_online != online:
        row.is_online = online
        audit.record(
            session,
            workspace_id=actor.workspace_id,
            actor_user_id=actor.user_id,
            action="livecode.staff_online" if online else "livecode.staff_offline",
            target_type="live_code",
            target_id=live_code_id,
            detail={"user_id": user_id},
        )


def get_live_code(session: Session, *, workspace_id: int, live_code_id: int, lock: bool = False) -> LiveCode:
    query = select(LiveCode).where(LiveCode.id == live_code_id, LiveCode.workspace_id == workspace_id)
    code = session.scalar(query.with_for_update() if lock else query)
    if code is None:
        raise NotFound(f"no live code {live_code_id} in this workspace", where="live_code_id")
    return code


def list_live_codes(session: Session, *, workspace_id: int) -> list[LiveCode]:
    return list(
        session.scalars(
            select(LiveCode).where(LiveCode.workspace_id == workspace_id).order_by(LiveCode.id.desc())
        )
    )


def staff_of(session: Session, *, live_code_id: int) -> list[LiveCodeStaff]:
    return list(
        session.scalars(
            select(LiveCodeStaff)
            .where(LiveCodeStaff.live_code_id == live_code_id, LiveCodeStaff.removed_at.is_(None))
            .order_by(LiveCodeStaff.position, LiveCodeStaff.id)
        )
    )


def code_by_state(session: Session, *, workspace_id: int, state: str) -> LiveCode | None:
    return session.scalar(
        select(LiveCode).where(LiveCode.workspace_id == workspace_id, LiveCode.state == state)
    )
