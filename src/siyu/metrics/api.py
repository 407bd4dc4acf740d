"""JSON routes of the metrics: each takes a date range of the workspace's calendar (both days
included) and returns the figures with the counts behind them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.metrics import service
from siyu.metrics.service import (
    Attribution,
    ChannelReturn,
    Cohort,
    CohortRow,
    Conversion,
    Funnel,
    MetricFilter,
    PassThrough,
    Period,
    PrivateDomainShare,
    Reactivation,
    Repurchase,
    RetentionRow,
    TrendPoint,
)
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/metrics", tags=["metrics"])


def _window(session: Session, actor: Actor, start: date, end: date) -> tuple[datetime, datetime]:
    return service.window_of_dates(session, workspace_id=actor.workspace_id, first_day=start, last_day=end)


Start = Annotated[date, Query(description="First day of the range (workspace calendar).")]
End = Annotated[date, Query(description="Last day of the range, included.")]


def metric_filter(
    channel_id: int | None = None,
    owner_user_id: int | None = None,
    store_id: int | None = None,
    segment_id: int | None = None,
) -> MetricFilter:
    """The filter every metric takes, from the query string (docs/metrics.md, "Filters")."""
    return MetricFilter(
        channel_id=channel_id, owner_user_id=owner_user_id, store_id=store_id, segment_id=segment_id
    )


Filters = Annotated[MetricFilter, Depends(metric_filter)]


@router.get("/repurchase", response_model=Repurchase)
def repurchase(
    session: DbSession,
    start: Start,
    end: End,
    filters: Filters,
    actor: Actor = require(Permission.READ),
) -> Repurchase:
    """Repurchase rate (复购率) and the days between consecutive purchases (docs/metrics.md)."""
    window = _window(session, actor, start, end)
    return service.repurchase(session, actor=actor, start=window[0], end=window[1], filters=filters)


@router.get("/private-domain", response_model=PrivateDomainShare)
def private_domain(
    session: DbSession,
    start: Start,
    end: End,
    filters: Filters,
    actor: Actor = require(Permission.READ),
) -> PrivateDomainShare:
    """The private domain's share of GMV and its buyers' purchase frequency against the others."""
    window = _window(session, actor, start, end)
    return service.private_domain_share(session, actor=actor, start=window[0], end=window[1], filters=filters)


@router.get("/channel-roi", response_model=list[ChannelReturn])
def channel_roi(
    session: DbSession,
    start: Start,
    end: End,
    actor: Actor = require(Permission.READ),
    attribution: Attribution = "last_touch",
    window_days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> list[ChannelReturn]:
    """Per channel: attributed revenue, cost, new customers, ROI and CAC (first or last touch)."""
    window = _window(session, actor, start, end)
    return service.channel_roi(
        session, actor=actor, start=window[0], end=window[1], attribution=attribution, window_days=window_days
    )


@router.get("/ltv-cohorts", response_model=list[Cohort])
def ltv_cohorts(
    session: DbSession,
    first_month: Annotated[date, Query(description="Any day of the first acquisition month.")],
    last_month: Annotated[date, Query(description="Any day of the last acquisition month.")],
    actor: Actor = require(Permission.READ),
    horizon: Annotated[int, Query(ge=0, le=60)] = 12,
    by: Literal["month", "channel"] = "month",
) -> list[Cohort]:
    """Historical LTV per customer by months since acquisition, per acquisition month or channel."""
    return service.ltv_by_cohort(
        session, actor=actor, first_month=first_month, last_month=last_month, horizon=horizon, by=by
    )


@router.get("/conversion", response_model=Conversion)
def conversion(
    session: DbSession,
    start: Start,
    end: End,
    filters: Filters,
    actor: Actor = require(Permission.READ),
    window_days: Annotated[int, Query(ge=1, le=3650)] = 30,
    goal: Annotated[str, Query(description='"purchase" or an event type.')] = "purchase",
    retained_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
) -> Conversion:
    """Conversion (转化率): of the customers who joined in the range (with `retained_days`: of those still
    reachable that many days later), the share whose first purchase or goal event came within
    `window_days` of joining."""
    window = _window(session, actor, start, end)
    return service.conversion(
        session,
        actor=actor,
        start=window[0],
        end=window[1],
        window_days=window_days,
        goal=goal,
        retained_days=retained_days,
        filters=filters,
    )


@router.get("/funnel", response_model=Funnel)
def funnel(
    session: DbSession,
    start: Start,
    end: End,
    steps: Annotated[list[str], Query(description='Event types in order; "purchase" for a purchase.')],
    actor: Actor = require(Permission.READ),
    window_days: Annotated[float, Query(gt=0, le=3650)] = 7,
    breakdown: Literal["channel", "owner"] | None = None,
) -> Funnel:
    """An ordered funnel: customers entering with step 1 in the range, and how many reach each next step
    within `window_days` of the one before, optionally per first channel or owner staff."""
    window = _window(session, actor, start, end)
    return service.funnel(
        session,
        actor=actor,
        steps=steps,
        start=window[0],
        end=window[1],
        window_days=window_days,
        breakdown=breakdown,
    )


@router.get("/retention", response_model=list[RetentionRow])
def retention(
    session: DbSession,
    first_month: Annotated[date, Query(description="Any day of the first joining month.")],
    last_month: Annotated[date, Query(description="Any day of the last joining month.")],
    actor: Actor = require(Permission.READ),
    horizon: Annotated[int, Query(ge=0, le=36)] = 6,
    activity: Literal["purchase", "any"] = "purchase",
) -> list[RetentionRow]:
    """Retention (留存率) cohorts: of the customers who joined in each month, the share active in each
    month since."""
    return service.retention(
        session,
        actor=actor,
        first_month=first_month,
        last_month=last_month,
        horizon=horizon,
        activity=activity,
    )


@router.get("/pass-through", response_model=PassThrough)
def pass_through(
    session: DbSession,
    start: Start,
    end: End,
    filters: Filters,
    actor: Actor = require(Permission.READ),
    window_days: Annotated[int, Query(ge=1, le=3650)] = 7,
) -> PassThrough:
    """Pass-through rate (通过率) per channel and per live code (docs/metrics.md)."""
    window = _window(session, actor, start, end)
    return service.pass_through(
        session, actor=actor, start=window[0], end=window[1], window_days=window_days, filters=filters
    )


@router.get("/cohorts", response_model=list[CohortRow])
def cohorts(
    session: DbSession,
    first: Annotated[date, Query(description="Any day of the first cohort's week or month.")],
    last: Annotated[date, Query(description="Any day of the last cohort's week or month.")],
    filters: Filters,
    actor: Actor = require(Permission.READ),
    period: Period = "week",
    horizon: Annotated[int, Query(ge=1, le=52)] = 8,
) -> list[CohortRow]:
    """Retention (留存率) cohort table: per week or month of joining, the customers still reachable and
    still active N days after joining."""
    return service.cohort_table(
        session, actor=actor, period=period, first=first, last=last, horizon=horizon, filters=filters
    )


@router.get("/trend", response_model=list[TrendPoint])
def trend(
    session: DbSession,
    last: Annotated[date, Query(description="Any day of the last week or month.")],
    filters: Filters,
    actor: Actor = require(Permission.READ),
    period: Period = "week",
    points: Annotated[int, Query(ge=1, le=52)] = 12,
) -> list[TrendPoint]:
    """Pass-through, retention, conversion and repurchase per week or month."""
    return service.trend(session, actor=actor, period=period, last=last, points=points, filters=filters)


@router.get("/dormant-reactivation", response_model=Reactivation)
def dormant_reactivation(
    session: DbSession,
    start: Start,
    end: End,
    filters: Filters,
    actor: Actor = require(Permission.READ),
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> Reactivation:
    """Of the customers reached in the range while dormant, the share who bought within `days`."""
    window = _window(session, actor, start, end)
    return service.dormant_reactivation(
        session, actor=actor, start=window[0], end=window[1], days=days, filters=filters
    )
