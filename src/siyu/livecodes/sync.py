"""The WeCom side of a live code as livecodes keeps it: which staff members' contact ways need pushing,
and what the WeCom worker reports back. livecodes never calls WeCom (siyu.wecom.tasks does).

Each staff row carries `wecom_version` (bumped by every edit that changes what WeCom should hold) and
`wecom_synced_version` (the version the worker last pushed): a row is due while the second is behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.timeutil import utcnow
from siyu.livecodes.models import LiveCode, LiveCodeStaff
from siyu.livecodes.service import get_live_code, mark_wecom_due

LEASE = timedelta(minutes=2)  # how long a worker holds a row it is pushing
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
ERROR_MAX = 500


class SyncStatus(StrEnum):
    SYNCED = "synced"  # WeCom holds the member's way as siyu last asked
    OFF = "off"  # nothing in WeCom, and nothing should be (a code out of use)
    PENDING = "pending"  # an edit waits for the worker (or WeCom is not set up: the hand-entered QR serves)
    FAILED = "failed"  # the last push was refused or did not answer; tried again later


def status_of(row: LiveCodeStaff) -> SyncStatus:
    """A staff row's WeCom status, as the code's page shows it."""
    if row.wecom_synced_version >= row.wecom_version:
        return SyncStatus.SYNCED if row.wecom_config_id else SyncStatus.OFF
    return SyncStatus.FAILED if row.wecom_error else SyncStatus.PENDING


def request_sync(session: Session, *, actor: Actor, live_code_id: int) -> int:
    """ "Sync now": every staff member of the code is pushed on the worker's next poll, failed ones too
    (their backoff is cleared). Returns how many rows were marked."""
    actor.require(Permission.WRITE)
    code = get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id, lock=True)
    rows = list(session.scalars(select(LiveCodeStaff).where(LiveCodeStaff.live_code_id == code.id)))
    for row in rows:
        mark_wecom_due(row)
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="livecode.wecom_sync_requested",
        target_type="live_code",
        target_id=code.id,
        detail={"staff": len(rows)},
    )
    return len(rows)


@dataclass(frozen=True)
class SyncItem:
    """A staff row due for a push, with what its WeCom way should be. `wanted` False: the way must go
    (member removed, code out of use)."""

    staff_id: int
    workspace_id: int
    live_code_id: int
    user_id: int
    version: int
    wanted: bool
    state: str
    remark: str
    skip_verify: bool
    config_id: str | None
    adding_since: datetime | None


def due_for_sync(
    session: Session, *, workspace_ids: list[int], now: datetime | None = None, limit: int = 200
) -> list[SyncItem]:
    """Staff rows of these workspaces whose WeCom way is behind their code, out of backoff and not held
    by another worker, oldest code first."""
    if not workspace_ids:
        return []
    current = now or utcnow()
    rows = session.execute(
        select(LiveCodeStaff, LiveCode)
        .join(LiveCode, LiveCode.id == LiveCodeStaff.live_code_id)
        .where(
            LiveCodeStaff.workspace_id.in_(workspace_ids),
            LiveCodeStaff.wecom_synced_version < LiveCodeStaff.wecom_version,
            or_(LiveCodeStaff.wecom_retry_at.is_(None), LiveCodeStaff.wecom_retry_at <= current),
        )
        .order_by(LiveCodeStaff.live_code_id, LiveCodeStaff.id)
        .limit(limit)
    ).all()
    return [
        SyncItem(
            staff_id=row.id,
            workspace_id=row.workspace_id,
            live_code_id=code.id,
            user_id=row.user_id,
            version=row.wecom_version,
            wanted=code.is_active and row.removed_at is None,
            state=code.state,
            remark=code.wecom_remark,
            skip_verify=code.wecom_skip_verify,
            config_id=row.wecom_config_id,
            adding_since=row.wecom_adding_since,
        )
        for row, code in rows
    ]


def claim(session: Session, *, item: SyncItem, now: datetime | None = None, adding: bool) -> bool:
    """Hold the row for one push (a lease of LEASE); `adding`: an add_contact_way is about to be made, so
    the marker `wecom_adding_since` is set first (kept when set already: the older attempt's window is
    the one to search). False: another worker holds it, or it changed since it was read."""
    current = now or utcnow()
    values: dict[str, object] = {"wecom_retry_at": current + LEASE}
    if adding and item.adding_since is None:
        values["wecom_adding_since"] = current
    result = session.execute(
        update(LiveCodeStaff)
        .where(
            LiveCodeStaff.id == item.staff_id,
            LiveCodeStaff.wecom_synced_version < LiveCodeStaff.wecom_version,
            LiveCodeStaff.wecom_config_id.is_(None)
            if item.config_id is None
            else LiveCodeStaff.wecom_config_id == item.config_id,
            or_(LiveCodeStaff.wecom_retry_at.is_(None), LiveCodeStaff.wecom_retry_at <= current),
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_synced(
    session: Session,
    *,
    item: SyncItem,
    config_id: str | None,
    qr_url: str | None,
    now: datetime | None = None,
) -> None:
    """The push of `item` went through: WeCom now holds the way `config_id` (None: no way) with the QR
    `qr_url` (None with the same config_id: the QR stays). A row of a
    removed member with nothing left in WeCom is deleted. An edit made during the push keeps the row due."""
    current = now or utcnow()
    row = session.get(LiveCodeStaff, item.staff_id, with_for_update=True)
    if row is None:
        return
    if config_id is None:
        row.wecom_qr_url = None
    elif qr_url or config_id != row.wecom_config_id:
        row.wecom_qr_url = qr_url
    # else: update_contact_way answers no QR, and the way's QR stays what add_contact_way gave
    row.wecom_config_id = config_id
    row.wecom_synced_version = max(row.wecom_synced_version, item.version)
    row.wecom_error, row.wecom_attempts, row.wecom_retry_at = None, 0, None
    row.wecom_adding_since = None
    row.wecom_synced_at = current
    if config_id is None and row.removed_at is not None and row.wecom_synced_version >= row.wecom_version:
        session.execute(delete(LiveCodeStaff).where(LiveCodeStaff.id == row.id))


def record_gone(session: Session, *, item: SyncItem) -> None:
    """WeCom no longer knows the row's way (deleted in its console): the config_id is dropped and the
    row stays due, so the next push adds the way again."""
    row = session.get(LiveCodeStaff, item.staff_id, with_for_update=True)
    if row is None:
        return
    row.wecom_config_id, row.wecom_qr_url = None, None
    row.wecom_error = "the contact way was deleted in WeCom; it is made again"
    row.wecom_retry_at = None


def record_failed(
    session: Session,
    *,
    item: SyncItem,
    error: str,
    now: datetime | None = None,
    nothing_added: bool = False,
) -> datetime:
    """The push of `item` failed: the error is kept on the row and the row is due again after a backoff
    (30 s, doubling to 1 h). `nothing_added`: WeCom answered, so no way was made by this attempt (the
    adding marker is cleared). Returns when the row is due again."""
    current = now or utcnow()
    row = session.get(LiveCodeStaff, item.staff_id, with_for_update=True)
    if row is None:
        return current
    row.wecom_attempts = (row.wecom_attempts or 0) + 1
    wait = min(BACKOFF_FIRST * 2 ** (row.wecom_attempts - 1), BACKOFF_MAX)
    row.wecom_error = error[:ERROR_MAX]
    row.wecom_retry_at = current + wait
    if nothing_added:
        row.wecom_adding_since = None
    return row.wecom_retry_at
