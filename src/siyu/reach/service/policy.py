"""A workspace's reach policy (budget, channel caps, the WeCom platform cap, quiet hours, de-duplication
window, attempts, rate limits) and the calendar arithmetic the gateway decides with."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.reach.models import ReachPolicy

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
WECOM_CAP_MODES = ("month", "week", "day")


@dataclass(frozen=True)
class Policy:
    """The rules in force for one workspace (the defaults while it stored none)."""

    marketing_budget: int = 2
    budget_days: int = 7
    channel_caps: dict[str, dict[str, int]] = field(default_factory=dict)
    wecom_cap: str = "month"
    quiet_start: str | None = "21:00"
    quiet_end: str | None = "09:00"
    dedup_hours: int = 24
    max_attempts: int = 5
    rate_limits: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "marketing_budget": self.marketing_budget,
            "budget_days": self.budget_days,
            "channel_caps": self.channel_caps,
            "wecom_cap": self.wecom_cap,
            "quiet_start": self.quiet_start,
            "quiet_end": self.quiet_end,
            "dedup_hours": self.dedup_hours,
            "max_attempts": self.max_attempts,
            "rate_limits": self.rate_limits,
        }


def get_policy(session: Session, *, workspace_id: int) -> Policy:
    row = session.get(ReachPolicy, workspace_id)
    if row is None:
        return Policy()
    return Policy(
        marketing_budget=row.marketing_budget,
        budget_days=row.budget_days,
        channel_caps=dict(row.channel_caps or {}),
        wecom_cap=row.wecom_cap,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        dedup_hours=row.dedup_hours,
        max_attempts=row.max_attempts,
        rate_limits={k: float(v) for k, v in (row.rate_limits or {}).items()},
    )


def _check(policy: Policy) -> None:
    if policy.marketing_budget < 0 or not 1 <= policy.budget_days <= 366:
        raise ValidationFailed(
            "the marketing budget needs a count ≥ 0 and a window of 1–366 days",
            where="marketing_budget/budget_days",
            hint="e.g. 2 messages in 7 days",
        )
    for channel, cap in policy.channel_caps.items():
        if set(cap) != {"count", "days"} or cap["count"] < 0 or not 1 <= cap["days"] <= 366:
            raise ValidationFailed(
                f"the cap of channel {channel!r} is not {{count, days}}",
                where=f"channel_caps.{channel}",
                hint='e.g. {"sms": {"count": 4, "days": 30}}',
            )
    if policy.wecom_cap not in WECOM_CAP_MODES:
        raise ValidationFailed(
            f"wecom_cap {policy.wecom_cap!r} is not one of {', '.join(WECOM_CAP_MODES)}",
            where="wecom_cap",
            hint="month: as many mass messages per month as it has days; week: 7; day: 1",
        )
    if (policy.quiet_start is None) != (policy.quiet_end is None):
        raise ValidationFailed("give both ends of quiet hours, or neither", where="quiet_start/quiet_end")
    for name in ("quiet_start", "quiet_end"):
        value = getattr(policy, name)
        if value is not None and not _CLOCK.match(value):
            raise ValidationFailed(
                f"{name} {value!r} is not a time of day", where=name, hint="HH:MM, e.g. 21:00"
            )
    if not 0 <= policy.dedup_hours <= 24 * 90:
        raise ValidationFailed("dedup_hours is out of range (0–2160)", where="dedup_hours")
    if not 1 <= policy.max_attempts <= 50:
        raise ValidationFailed("max_attempts is out of range (1–50)", where="max_attempts")
    for channel, rate in policy.rate_limits.items():
        if not rate > 0:
            raise ValidationFailed(
                f"the rate limit of {channel!r} must be positive",
                where=f"rate_limits.{channel}",
                hint="messages per second, e.g. 20",
            )


def update_policy(session: Session, *, actor: Actor, changes: dict[str, Any]) -> Policy:
    """Change the workspace's policy fields named in `changes`; the rest keep their values."""
    actor.require(Permission.MANAGE)
    current = get_policy(session, workspace_id=actor.workspace_id).as_dict()
    unknown = set(changes) - set(current)
    if unknown:
        raise ValidationFailed(f"unknown policy fields: {', '.join(sorted(unknown))}", where="policy")
    current.update(changes)
    policy = Policy(**current)
    _check(policy)
    row = session.get(ReachPolicy, actor.workspace_id)
    if row is None:
        row = ReachPolicy(workspace_id=actor.workspace_id)
        session.add(row)
    for key, value in policy.as_dict().items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="reach.policy_updated",
        target_type="reach_policy",
        target_id=actor.workspace_id,
        detail={"changed": sorted(changes)},
    )
    return policy


def zone_of(name: str | None, fallback: str) -> ZoneInfo:
    """The customer's zone, or the workspace's when the profile has none (or names no real zone)."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(at: datetime, zone: ZoneInfo, start: str | None, end: str | None) -> datetime | None:
    """When the quiet hours around `at` end, in UTC, if `at` falls inside them in `zone`; else None.

    Quiet hours may wrap midnight (21:00–09:00). A start equal to the end means none.
    """
    if not start or not end or start == end:
        return None
    local = at.astimezone(zone)
    clock, begin, finish = local.time().replace(tzinfo=None), _clock(start), _clock(end)
    if begin < finish:
        inside, end_day = begin <= clock < finish, local.date()
    else:
        inside = clock >= begin or clock < finish
        end_day = local.date() + timedelta(days=1) if clock >= begin else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, finish, tzinfo=zone).astimezone(UTC)


def calendar_period(at: datetime, zone: ZoneInfo, mode: str) -> tuple[date, date, int]:
    """The calendar period of the WeCom platform cap around `at` in `zone`: (first day, day after the
    last, how many mass messages a customer may receive in it)."""
    day = at.astimezone(zone).date()
    if mode == "day":
        return day, day + timedelta(days=1), 1
    if mode == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7), 7
    first = day.replace(day=1)
    days = calendar.monthrange(day.year, day.month)[1]
    return first, first + timedelta(days=days), days
