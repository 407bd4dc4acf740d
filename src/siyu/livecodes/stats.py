"""The figures of live codes, in SQL: scans, distinct scanners, new and returning adds, deletions,
pass-through rate and cost per new customer, per code and per staff member, by day in the workspace's
calendar. Definitions in docs/livecodes.md."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Select, case, cast, distinct, func, select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.core.db import is_postgres
from siyu.core.errors import ValidationFailed
from siyu.livecodes import service
from siyu.livecodes.models import LiveCode, LiveCodeAdd, LiveCodeScan
from siyu.livecodes.schemas import DayFigures, Figures, LiveCodeStats, StaffFigures

__all__ = ["Figures", "add_rows", "code_stats", "scan_rows", "totals_by_code"]
from siyu.workspaces import service as workspaces

MAX_DAYS = 366


def _local_day(session: Session, column: Any, zone: str, at: datetime) -> Any:
    """The calendar day of a timestamp in the workspace's zone. On SQLite the zone's offset at `at`
    stands for the whole range, as in the metrics (exact for Asia/Shanghai, which has no DST)."""
    if is_postgres(session):
        return cast(func.timezone(zone, column), Date)
    offset = at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _window(zone: str, start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValidationFailed(f"the period ends ({end}) before it starts ({start})", where="end")
    if (end - start).days >= MAX_DAYS:
        raise ValidationFailed(
            f"a period of {(end - start).days + 1} days is too long", where="end", hint=f"≤ {MAX_DAYS} days"
        )
    tz = ZoneInfo(zone)
    return datetime(start.year, start.month, start.day, tzinfo=tz), datetime(
        end.year, end.month, end.day, tzinfo=tz
    ) + timedelta(days=1)


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def code_stats(
    session: Session, *, workspace_id: int, live_code_id: int, start: date, end: date
) -> LiveCodeStats:
    """One code's figures over [start, end] (days in the workspace's calendar): totals, every day of the
    period (zeros included), and every staff member who was handed a scan or an add."""
    code = service.get_live_code(session, workspace_id=workspace_id, live_code_id=live_code_id)
    zone = workspaces.get_workspace(session, workspace_id=workspace_id).timezone
    since, until = _window(zone, start, end)
    scan_day = _local_day(session, LiveCodeScan.scanned_at, zone, since).label("day")
    in_scans = (
        LiveCodeScan.live_code_id == code.id,
        LiveCodeScan.scanned_at >= since,
        LiveCodeScan.scanned_at < until,
    )
    add_day = _local_day(session, LiveCodeAdd.added_at, zone, since).label("day")
    in_adds = (
        LiveCodeAdd.live_code_id == code.id,
        LiveCodeAdd.added_at >= since,
        LiveCodeAdd.added_at < until,
    )
    del_day = _local_day(session, LiveCodeAdd.deleted_at, zone, since).label("day")
    in_dels = (
        LiveCodeAdd.live_code_id == code.id,
        LiveCodeAdd.deleted_at >= since,
        LiveCodeAdd.deleted_at < until,
    )

    days: dict[date, DayFigures] = {}
    day = start
    while day <= end:
        days[day] = DayFigures(day=day)
        day += timedelta(days=1)
    for d, scans, scanners in session.execute(
        select(scan_day, func.count(), func.count(distinct(LiveCodeScan.visitor_hash)))
        .where(*in_scans)
        .group_by(scan_day)
    ):
        figures = days.get(_as_date(d))
        if figures is not None:
            figures.scans, figures.scanners = int(scans), int(scanners)
    for d, new, returning in session.execute(
        select(
            add_day,
            _count(LiveCodeAdd.is_new_customer.is_(True)),
            _count(LiveCodeAdd.is_new_customer.is_(False)),
        )
        .where(*in_adds)
        .group_by(add_day)
    ):
        figures = days.get(_as_date(d))
        if figures is not None:
            figures.new_adds, figures.returning_adds = int(new), int(returning)
    for d, deletions in session.execute(select(del_day, func.count()).where(*in_dels).group_by(del_day)):
        figures = days.get(_as_date(d))
        if figures is not None:
            figures.deletions = int(deletions)

    totals = Figures(
        scans=sum(f.scans for f in days.values()),
        # distinct over the whole period, not the sum of the days: a scanner of two days counts once
        scanners=int(
            session.scalar(select(func.count(distinct(LiveCodeScan.visitor_hash))).where(*in_scans)) or 0
        ),
        new_adds=sum(f.new_adds for f in days.values()),
        returning_adds=sum(f.returning_adds for f in days.values()),
        deletions=sum(f.deletions for f in days.values()),
    )

    names = {m.user_id: m.display_name for m in auth.list_members(session, workspace_id=workspace_id)}
    by_staff: dict[int | None, StaffFigures] = {}

    def staff(user_id: int | None) -> StaffFigures:
        if user_id not in by_staff:
            by_staff[user_id] = StaffFigures(
                user_id=user_id, display_name=names.get(user_id, "") if user_id else ""
            )
        return by_staff[user_id]

    for member in service.staff_of(session, live_code_id=code.id):
        staff(member.user_id)
    for user_id, scans, scanners in session.execute(
        select(LiveCodeScan.staff_user_id, func.count(), func.count(distinct(LiveCodeScan.visitor_hash)))
        .where(*in_scans)
        .group_by(LiveCodeScan.staff_user_id)
    ):
        row = staff(user_id)
        row.scans, row.scanners = int(scans), int(scanners)
    for user_id, new, returning in session.execute(
        select(
            LiveCodeAdd.staff_user_id,
            _count(LiveCodeAdd.is_new_customer.is_(True)),
            _count(LiveCodeAdd.is_new_customer.is_(False)),
        )
        .where(*in_adds)
        .group_by(LiveCodeAdd.staff_user_id)
    ):
        row = staff(user_id)
        row.new_adds, row.returning_adds = int(new), int(returning)
    for user_id, deletions in session.execute(
        select(LiveCodeAdd.staff_user_id, func.count()).where(*in_dels).group_by(LiveCodeAdd.staff_user_id)
    ):
        staff(user_id).deletions = int(deletions)

    all_new = int(
        session.scalar(
            select(func.count()).where(
                LiveCodeAdd.live_code_id == code.id, LiveCodeAdd.is_new_customer.is_(True)
            )
        )
        or 0
    )
    return LiveCodeStats(
        live_code_id=code.id,
        start=start,
        end=end,
        totals=totals,
        cost_cents=code.cost_cents,
        cost_per_new_customer_cents=code.cost_cents // all_new if all_new else None,
        days=list(days.values()),
        staff=sorted(by_staff.values(), key=lambda s: (s.user_id is None, s.display_name, s.user_id or 0)),
    )


def totals_by_code(session: Session, *, workspace_id: int) -> dict[int, Figures]:
    """All-time figures of every code of the workspace (the list page), in three grouped statements."""
    out: dict[int, Figures] = {}
    for code_id, scans, scanners in session.execute(
        select(LiveCodeScan.live_code_id, func.count(), func.count(distinct(LiveCodeScan.visitor_hash)))
        .where(LiveCodeScan.workspace_id == workspace_id)
        .group_by(LiveCodeScan.live_code_id)
    ):
        out.setdefault(code_id, Figures()).scans = int(scans)
        out[code_id].scanners = int(scanners)
    for code_id, new, returning, deletions in session.execute(
        select(
            LiveCodeAdd.live_code_id,
            _count(LiveCodeAdd.is_new_customer.is_(True)),
            _count(LiveCodeAdd.is_new_customer.is_(False)),
            _count(LiveCodeAdd.deleted_at.is_not(None)),
        )
        .where(LiveCodeAdd.workspace_id == workspace_id)
        .group_by(LiveCodeAdd.live_code_id)
    ):
        figures = out.setdefault(code_id, Figures())
        figures.new_adds, figures.returning_adds, figures.deletions = int(new), int(returning), int(deletions)
    return out


def scan_rows(*, workspace_id: int) -> Select[Any]:
    """Every scan with its code's channel and store: (`live_code_id`, `channel_id`, `store_id`,
    `staff_user_id`, `visitor_hash`, `scanned_at`), for the analytical domains to compose in SQL."""
    return (
        select(
            LiveCodeScan.live_code_id.label("live_code_id"),
            LiveCode.channel_id.label("channel_id"),
            LiveCode.store_id.label("store_id"),
            LiveCodeScan.staff_user_id.label("staff_user_id"),
            LiveCodeScan.visitor_hash.label("visitor_hash"),
            LiveCodeScan.scanned_at.label("scanned_at"),
        )
        .join(LiveCode, LiveCode.id == LiveCodeScan.live_code_id)
        .where(LiveCodeScan.workspace_id == workspace_id, LiveCode.workspace_id == workspace_id)
    )


def add_rows(*, workspace_id: int) -> Select[Any]:
    """Every WeCom add through a code with its code's channel and store: (`live_code_id`, `channel_id`,
    `store_id`, `staff_user_id`, `customer_id`, `added_at`)."""
    return (
        select(
            LiveCodeAdd.live_code_id.label("live_code_id"),
            LiveCode.channel_id.label("channel_id"),
            LiveCode.store_id.label("store_id"),
            LiveCodeAdd.staff_user_id.label("staff_user_id"),
            LiveCodeAdd.customer_id.label("customer_id"),
            LiveCodeAdd.added_at.label("added_at"),
        )
        .join(LiveCode, LiveCode.id == LiveCodeAdd.live_code_id)
        .where(LiveCodeAdd.workspace_id == workspace_id, LiveCode.workspace_id == workspace_id)
    )
