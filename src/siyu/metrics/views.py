"""The metrics page (数据): repurchase, conversion and the private domain's share as cards, channel ROI
and CAC as a table and chart, purchase intervals as a histogram and LTV by acquisition month as a heat
map. Charts read their data from JSON blocks in the page, so tables and charts never disagree."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.auth.service import Permission
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.metrics import service as metrics
from siyu.orders import service as orders
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import csv_download, render, render_error, yuan
from siyu.workspaces import service as workspaces

router = APIRouter(include_in_schema=False)
DEFAULT_DAYS = 90
COHORT_MONTHS = 6


def _default_range(session: DbSession, workspace_id: int) -> tuple[date, date]:
    """The last 90 days, ending today — or at the newest order, for a store whose data stops earlier."""
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=workspace_id).timezone)
    last = utcnow().astimezone(zone).date()
    newest = orders.last_order_at(session, workspace_id=workspace_id)
    if newest is not None and newest.astimezone(zone).date() < last - timedelta(days=DEFAULT_DAYS):
        last = newest.astimezone(zone).date()
    return last - timedelta(days=DEFAULT_DAYS - 1), last


def _chosen_range(
    session: DbSession, workspace_id: int, start: date | None, end: date | None
) -> tuple[date, date]:
    """The range asked for, with the default range filling in a missing end."""
    if start is None or end is None:
        default_start, default_end = _default_range(session, workspace_id)
        start, end = start or default_start, end or default_end
    return start, end


def _month_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@router.get("/metrics")
def metrics_page(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    start: date | None = None,
    end: date | None = None,
    attribution: metrics.Attribution = "last_touch",
) -> Response:
    actor.require(Permission.READ)
    start, end = _chosen_range(session, actor.workspace_id, start, end)
    try:
        window = metrics.window_of_dates(
            session, workspace_id=actor.workspace_id, first_day=start, last_day=end
        )
        repurchase = metrics.repurchase(session, actor=actor, start=window[0], end=window[1])
        conversion = metrics.conversion(session, actor=actor, start=window[0], end=window[1])
        share = metrics.private_domain_share(session, actor=actor, start=window[0], end=window[1])
        roi = metrics.channel_roi(
            session, actor=actor, start=window[0], end=window[1], attribution=attribution
        )
        cohorts = metrics.ltv_by_cohort(
            session,
            actor=actor,
            first_month=_month_back(end, COHORT_MONTHS - 1),
            last_month=end,
            horizon=COHORT_MONTHS - 1,
            today=end + timedelta(days=1),
        )
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    charts: dict[str, Any] = {
        "roi": {
            "channels": [row.channel_name for row in roi],
            "revenue": [float(yuan(row.attributed_revenue_cents)) for row in roi],
            "cost": [float(yuan(row.cost_cents)) for row in roi],
        },
        "intervals": {
            "labels": [bucket.label for bucket in repurchase.intervals],
            "counts": [bucket.intervals for bucket in repurchase.intervals],
        },
        "cohorts": {
            "cohorts": [c.key for c in cohorts],
            "offsets": list(range(COHORT_MONTHS)),
            # [offset, cohort index, LTV in yuan], only for months that have ended
            "cells": [
                [m, i, round(value / 100, 2)]
                for i, c in enumerate(cohorts)
                for m, (value, done) in enumerate(zip(c.ltv_cents, c.complete, strict=True))
                if done
            ],
        },
    }
    return render(
        request,
        "metrics/index.html",
        {
            "start": start,
            "end": end,
            "attribution": attribution,
            "repurchase": repurchase,
            "conversion": conversion,
            "share": share,
            "roi": roi,
            "cohorts": cohorts,
            "offsets": list(range(COHORT_MONTHS)),
            "charts": charts,
        },
        session=session,
        actor=actor,
    )


@router.get("/metrics/data.csv")
def metrics_csv(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    chart: str,
    start: date | None = None,
    end: date | None = None,
    attribution: metrics.Attribution = "last_touch",
) -> Response:
    """The data of one chart of the metrics page (`chart`: roi, intervals or cohorts) as CSV, for the
    same range and attribution as the page."""
    actor.require(Permission.READ)
    if chart not in ("roi", "intervals", "cohorts"):
        return render_error(
            request,
            NotFound(
                f"no chart {chart!r} on the metrics page", where="chart", hint="roi, intervals or cohorts"
            ),
            session=session,
            actor=actor,
        )
    start, end = _chosen_range(session, actor.workspace_id, start, end)
    try:
        window = metrics.window_of_dates(
            session, workspace_id=actor.workspace_id, first_day=start, last_day=end
        )
        if chart == "roi":
            rows = metrics.channel_roi(
                session, actor=actor, start=window[0], end=window[1], attribution=attribution
            )
            return csv_download(
                f"channel-roi-{start}-{end}.csv",
                ["channel", "attributed_revenue_yuan", "cost_yuan", "roi", "new_customers", "cac_yuan"],
                [
                    (
                        r.channel_name,
                        yuan(r.attributed_revenue_cents),
                        yuan(r.cost_cents),
                        "" if r.roi is None else r.roi,
                        r.new_customers,
                        "" if r.cac_cents is None else yuan(round(r.cac_cents)),
                    )
                    for r in rows
                ],
            )
        if chart == "intervals":
            repurchase = metrics.repurchase(session, actor=actor, start=window[0], end=window[1])
            return csv_download(
                f"repurchase-intervals-{start}-{end}.csv",
                ["interval_days", "intervals"],
                [(b.label, b.intervals) for b in repurchase.intervals],
            )
        cohorts = metrics.ltv_by_cohort(
            session,
            actor=actor,
            first_month=_month_back(end, COHORT_MONTHS - 1),
            last_month=end,
            horizon=COHORT_MONTHS - 1,
            today=end + timedelta(days=1),
        )
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return csv_download(
        f"ltv-cohorts-{end}.csv",
        ["cohort", "customers", *(f"ltv_m{m}_yuan" for m in range(COHORT_MONTHS))],
        [
            (
                c.key,
                c.customers,
                *(yuan(round(v)) if done else "" for v, done in zip(c.ltv_cents, c.complete, strict=True)),
            )
            for c in cohorts
        ],
    )


# --- the four metrics' trends and the retention cohorts -------------------------------------------

TREND_POINTS = 12
COHORT_PERIODS = {"week": 12, "month": 6}  # cohorts on the page, and as many periods after joining


def _optional_id(text: str | None, *, where: str) -> int | None:
    """An id from the filter form, where an empty field means "any"."""
    if text is None or not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise ValidationFailed(
            f"{text!r} is not an id", where=where, hint="a whole number, or empty"
        ) from None


def _filters(
    channel_id: str | None, owner_user_id: str | None, store_id: str | None, segment_id: str | None
) -> metrics.MetricFilter:
    return metrics.MetricFilter(
        channel_id=_optional_id(channel_id, where="channel_id"),
        owner_user_id=_optional_id(owner_user_id, where="owner_user_id"),
        store_id=_optional_id(store_id, where="store_id"),
        segment_id=_optional_id(segment_id, where="segment_id"),
    )


def _period(value: str) -> metrics.Period:
    if value not in metrics.PERIOD_DAYS:
        raise ValidationFailed(f"unknown period {value!r}", where="period", hint="week or month")
    return "week" if value == "week" else "month"


def _last_day(session: DbSession, workspace_id: int, end: date | None) -> date:
    return end or _default_range(session, workspace_id)[1]


def _trend_rows(points: list[metrics.TrendPoint]) -> list[tuple[str, str, str, str, str]]:
    def share(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    return [
        (p.period, share(p.pass_through), share(p.retention), share(p.conversion), share(p.repurchase))
        for p in points
    ]


@router.get("/metrics/overview")
def overview_page(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    end: date | None = None,
    period: str = "week",
    channel_id: str | None = None,
    owner_user_id: str | None = None,
    store_id: str | None = None,
    segment_id: str | None = None,
) -> Response:
    """Pass-through, retention, conversion and repurchase per week or month, as lines and a table."""
    actor.require(Permission.READ)
    try:
        filters = _filters(channel_id, owner_user_id, store_id, segment_id)
        chosen = _period(period)
        last = _last_day(session, actor.workspace_id, end)
        points = metrics.trend(
            session, actor=actor, period=chosen, last=last, points=TREND_POINTS, filters=filters
        )
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    chart = {
        "periods": [p.period for p in points],
        "series": {
            name: [None if v is None else round(v * 100, 2) for v in values]
            for name, values in (
                ("pass_through", [p.pass_through for p in points]),
                ("retention", [p.retention for p in points]),
                ("conversion", [p.conversion for p in points]),
                ("repurchase", [p.repurchase for p in points]),
            )
        },
    }
    return render(
        request,
        "metrics/overview.html",
        {"points": points, "period": chosen, "end": last, "filters": filters, "chart": chart},
        session=session,
        actor=actor,
    )


@router.get("/metrics/overview.csv")
def overview_csv(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    end: date | None = None,
    period: str = "week",
    channel_id: str | None = None,
    owner_user_id: str | None = None,
    store_id: str | None = None,
    segment_id: str | None = None,
) -> Response:
    """The overview's trend lines as CSV (shares from 0 to 1, empty where there is no figure)."""
    actor.require(Permission.READ)
    try:
        chosen = _period(period)
        last = _last_day(session, actor.workspace_id, end)
        points = metrics.trend(
            session,
            actor=actor,
            period=chosen,
            last=last,
            points=TREND_POINTS,
            filters=_filters(channel_id, owner_user_id, store_id, segment_id),
        )
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return csv_download(
        f"metrics-trend-{chosen}-{last}.csv",
        ["period_start", "pass_through", "retention", "conversion", "repurchase"],
        _trend_rows(points),
    )


def _cohorts(
    session: DbSession, actor: CurrentActor, period: metrics.Period, last: date, filters: metrics.MetricFilter
) -> list[metrics.CohortRow]:
    count = COHORT_PERIODS[period]
    first = metrics.period_start(metrics.period_of(last, period) - count + 1, period)
    return metrics.cohort_table(
        session, actor=actor, period=period, first=first, last=last, horizon=count, filters=filters
    )


@router.get("/metrics/cohorts")
def cohorts_page(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    end: date | None = None,
    period: str = "week",
    channel_id: str | None = None,
    owner_user_id: str | None = None,
    store_id: str | None = None,
    segment_id: str | None = None,
) -> Response:
    """Retention (留存率) cohorts as heat maps: still reachable, and still active, N days after joining."""
    actor.require(Permission.READ)
    try:
        filters = _filters(channel_id, owner_user_id, store_id, segment_id)
        chosen = _period(period)
        last = _last_day(session, actor.workspace_id, end)
        rows = _cohorts(session, actor, chosen, last, filters)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    days = rows[0].days if rows else []

    def cells(shares: str) -> list[list[float | int]]:
        # [offset index, cohort index, share in %], only for marks that have passed for the whole cohort
        return [
            [k, i, round((getattr(row, shares)[k] or 0) * 100, 1)]
            for i, row in enumerate(rows)
            for k in range(len(days))
            if row.complete[k]
        ]

    chart = {
        "cohorts": [row.cohort for row in rows],
        "days": days,
        "reachable": cells("reachable_share"),
        "active": cells("active_share"),
    }
    return render(
        request,
        "metrics/cohorts.html",
        {"rows": rows, "days": days, "period": chosen, "end": last, "filters": filters, "chart": chart},
        session=session,
        actor=actor,
    )


@router.get("/metrics/cohorts.csv")
def cohorts_csv(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    end: date | None = None,
    period: str = "week",
    channel_id: str | None = None,
    owner_user_id: str | None = None,
    store_id: str | None = None,
    segment_id: str | None = None,
) -> Response:
    """The cohort table as CSV: one line per cohort and N, with the counts behind each share."""
    actor.require(Permission.READ)
    try:
        chosen = _period(period)
        last = _last_day(session, actor.workspace_id, end)
        rows = _cohorts(
            session, actor, chosen, last, _filters(channel_id, owner_user_id, store_id, segment_id)
        )
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return csv_download(
        f"retention-cohorts-{chosen}-{last}.csv",
        ["cohort", "customers", "days", "reachable", "active", "complete"],
        [
            (row.cohort, row.customers, n, row.reachable[k], row.active[k], int(row.complete[k]))
            for row in rows
            for k, n in enumerate(row.days)
        ],
    )
