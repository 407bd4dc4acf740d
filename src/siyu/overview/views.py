"""The overview page: figure cards and net revenue by channel per month (ECharts chart and its table).

The chart reads its data from a JSON block in the page, so the table and the chart never disagree.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.auth.service import Permission
from siyu.core.errors import ValidationFailed
from siyu.overview import service as overview
from siyu.overview.service import Overview
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render, render_error, yuan

router = APIRouter(include_in_schema=False)
MONTH_CHOICES = (3, 6, 12, 24)


def chart_data(figures: Overview) -> dict[str, Any]:
    """The chart's data: month labels and one stacked series (in yuan) per channel."""
    return {
        "months": [month.strftime("%Y-%m") for month in figures.months],
        "series": [
            {"name": s.channel_name, "data": [float(yuan(v)) for v in s.net_revenue_cents]}
            for s in figures.series
        ],
    }


@router.get("/overview")
def overview_page(request: Request, session: DbSession, actor: CurrentActor, months: int = 12) -> Response:
    actor.require(Permission.READ)
    try:
        figures = overview.get_overview(session, actor=actor, months=months)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "overview/index.html",
        {"figures": figures, "chart": chart_data(figures), "months": months, "month_choices": MONTH_CHOICES},
        session=session,
        actor=actor,
    )
