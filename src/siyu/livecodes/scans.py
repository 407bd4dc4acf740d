"""Scans: a visit to a live code's landing page, handed to a staff member by the code's strategy.

`scan` picks the member (assignment.py) under a lock on the code's row, so that concurrent scans on
PostgreSQL never take the same turn, and stores the scan with keyed hashes of the client only.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.core.config import get_settings
from siyu.core.errors import NotFound, PermissionDenied
from siyu.core.timeutil import utcnow
from siyu.livecodes.assignment import Candidate, choose
from siyu.livecodes.models import LiveCode, LiveCodeScan
from siyu.livecodes.service import NOT_FOUND_MESSAGE, TOKEN_PATTERN, staff_of
from siyu.workspaces import service as workspaces


@dataclass(frozen=True)
class ScanResult:
    """What the landing page shows: the code, the member the scanner is handed to (none: nobody is
    available now), their contact QR, and the code's state."""

    scan_id: int
    live_code_id: int
    workspace_id: int
    code_name: str
    state: str
    staff_user_id: int | None
    staff_name: str
    contact_qr_url: str | None


def client_hash(kind: str, value: str) -> str:
    """A keyed hash of a client's address or user agent: equal for the same client, useless without
    the server's secret key (no raw PII is stored)."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:32]


def active_code_by_token(session: Session, *, token: str, lock: bool = False) -> LiveCode:
    """The code of a landing URL; an unknown, malformed and disabled token fail alike (no enumeration)."""
    if not TOKEN_PATTERN.match(token):
        raise NotFound(NOT_FOUND_MESSAGE)
    query = select(LiveCode).where(LiveCode.token == token)
    code = session.scalar(query.with_for_update() if lock else query)
    if code is None or not code.is_active:
        raise NotFound(NOT_FOUND_MESSAGE)
    return code


def _local_day_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def scan(
    session: Session,
    *,
    token: str,
    client_ip: str,
    user_agent: str,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> ScanResult:
    """Record a visit to a code's landing page and hand it to a staff member by the code's strategy.

    The code's row is locked for the choice (SELECT … FOR UPDATE on PostgreSQL; SQLite's write
    transaction already admits one writer), so concurrent scans each take their own turn."""
    now = now or utcnow()
    code = active_code_by_token(session, token=token, lock=True)
    zone = workspaces.get_workspace(session, workspace_id=code.workspace_id).timezone
    rows = staff_of(session, live_code_id=code.id)
    day_start = _local_day_start(now, zone)
    assigned_today: dict[int, int] = {}
    if any(r.daily_cap is not None for r in rows):  # the count is only needed against a cap
        assigned_today = {
            int(user_id): int(count)
            for user_id, count in session.execute(
                select(LiveCodeScan.staff_user_id, func.count())
                .where(
                    LiveCodeScan.live_code_id == code.id,
                    LiveCodeScan.staff_user_id.is_not(None),
                    LiveCodeScan.scanned_at >= day_start,
                    LiveCodeScan.scanned_at < day_start + timedelta(days=1),
                )
                .group_by(LiveCodeScan.staff_user_id)
            )
        }
    candidates = [
        Candidate(
            user_id=r.user_id,
            weight=r.weight,
            daily_cap=r.daily_cap,
            is_backup=r.is_backup,
            is_online=r.is_online,
            weekdays=r.weekdays,
            start_minute=r.start_minute,
            end_minute=r.end_minute,
            current_weight=r.current_weight,
        )
        for r in rows
    ]
    choice = choose(
        candidates,
        strategy=code.strategy,
        cursor=code.rr_cursor,
        local_now=now.astimezone(ZoneInfo(zone)),
        assigned_today=assigned_today,
        rng=rng,
    )
    code.rr_cursor = choice.cursor
    for row in rows:
        if row.user_id in choice.current_weights:
            row.current_weight = choice.current_weights[row.user_id]
    record = LiveCodeScan(
        workspace_id=code.workspace_id,
        live_code_id=code.id,
        staff_user_id=choice.user_id,
        scanned_at=now,
        visitor_hash=client_hash("visitor", f"{client_ip}\x1f{user_agent}"),
        ip_hash=client_hash("ip", client_ip),
    )
    session.add(record)
    session.flush()
    chosen = next((r for r in rows if r.user_id == choice.user_id), None)
    staff_name = ""
    if chosen is not None:
        try:
            staff_name = auth.actor_for(
                session, user_id=chosen.user_id, workspace_id=code.workspace_id
            ).display_name
        except PermissionDenied:  # left the workspace since: the scan still goes to their contact QR
            staff_name = ""
    return ScanResult(
        scan_id=record.id,
        live_code_id=code.id,
        workspace_id=code.workspace_id,
        code_name=code.name,
        state=code.state,
        staff_user_id=choice.user_id,
        staff_name=staff_name,
        # the member's synced WeCom way first (its state attributes the add); the hand-entered QR serves
        # a workspace without WeCom settings, or until the first push
        contact_qr_url=(chosen.wecom_qr_url or chosen.contact_qr_url) if chosen is not None else None,
    )


def get_scan(session: Session, *, live_code_id: int, scan_id: int) -> LiveCodeScan:
    found = session.get(LiveCodeScan, scan_id)
    if found is None or found.live_code_id != live_code_id:
        raise NotFound(NOT_FOUND_MESSAGE)
    return found
