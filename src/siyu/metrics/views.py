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
