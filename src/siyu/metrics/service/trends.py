"""The four headline metrics — pass-through, retention, conversion, repurchase — per week or month of
the workspace's calendar, for the overview's trend lines (each point is the metric over that period)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.metrics.service.filters import MetricFilter
from siyu.metrics.service.purchases import conversion, repurchase
from siyu.metrics.service.reachability import (
    PERIOD_DAYS,
    Period,
    cohort_table,
    pass_through_by_period,
    period_of,
    period_start,
)
from siyu.workspaces import service as workspaces

MAX_POINTS = 52


@dataclass(frozen=True)
class TrendPoint:
    """One period: its first day and the four metrics over the customers and purchases of it."""

    period: str  # the period's first day, "2026-03-02"
    pass_through: float | None  # pass-through rate of those who joined in the period (7-day window)
    retention: float | None  # share of those who joined still reachable one period later
    conversion: float | None  # first purchase within 30 days of the period's joiners
    repurchase: float | None  # repeat buyers / buyers of the period's purchases


def trend(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    last: date,
    points: int = 12,
    filters: MetricFilter | None = None,
    now: datetime | None = None,
) -> list[TrendPoint]:
    """The `points` weeks or months up to the one holding `last`, oldest first. Retention is the
    reachable share after 7 (weeks) or 30 (months) days; a period whose mark has not passed is None."""
    actor.require(Permission.READ)
    if period not in PERIOD_DAYS:
        raise ValidationFailed(f"unknown period {period!r}", where="period", hint="week or month")
    if not 1 <= points <= MAX_POINTS:
        raise ValidationFailed(f"{points} points are out of range", where="points", hint=f"1 to {MAX_POINTS}")
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=actor.workspace_id).timezone)
    last_index = period_of(last, period)
    cohorts = {
        row.cohort: row
        for row in cohort_table(
            session,
            actor=actor,
            period=period,
            first=period_start(last_index - points + 1, period),
            last=last,
            horizon=1,
            filters=filters,
            now=now,
        )
    }
    passing = pass_through_by_period(
        session,
        actor=actor,
        period=period,
        first=period_start(last_index - points + 1, period),
        last=last,
        filters=filters,
    )
    result = []
    for index in range(last_index - points + 1, last_index + 1):
        first_day, after = period_start(index, period), period_start(index + 1, period)
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=zone)
        end = datetime(after.year, after.month, after.day, tzinfo=zone)
        converting = conversion(session, actor=actor, start=start, end=end, filters=filters)
        buying = repurchase(session, actor=actor, start=start, end=end, filters=filters, intervals=False)
        label = first_day.isoformat() if period == "week" else f"{first_day.year:04d}-{first_day.month:02d}"
        reached, joined = passing.get(label, (0, 0))
        row = cohorts.get(label)
        retained = row.reachable_share[0] if row is not None and row.complete[0] else None
        result.append(
            TrendPoint(
                period=first_day.isoformat(),
                pass_through=joined / reached if reached else None,
                retention=retained,
                conversion=converting.rate,
                repurchase=buying.rate,
            )
        )
    return result
