"""The overview page (概览): revenue cards and net revenue by channel per month; the four metrics with
their change and trend lines; private-domain GMV share; channel ROI; a retention cohort heat map; RFM
layers and lifecycle stages. Charts read their data from JSON blocks in the page, so tables and charts
never disagree, and every chart's data downloads as CSV from /overview/data.csv.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.auth.service import Permission
from siyu.core.errors import NotFound, ValidationFailed
from siyu.overview import service as overview
from siyu.overview.service import Dashboard, Overview
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import csv_download, render, render_error, yuan

router = APIRouter(include_in_schema=False)
MONTH_CHOICES = (3, 6, 12, 24)
CHARTS = ("revenue", "metrics", "gmv", "roi", "cohorts", "rfm", "stages")


def chart_data(figures: Overview) -> dict[str, Any]:
    """The revenue chart's data: month labels and one stacked series (in yuan) per channel."""
    return {
        "months": [month.strftime("%Y-%m") for month in figures.months],
        "series": [
            {"name": s.channel_name, "data": [float(yuan(v)) for v in s.net_revenue_cents]}
            for s in figures.series
        ],
    }


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def dashboard_charts(board: Dashboard) -> dict[str, Any]:
    """The data of the dashboard's charts: shares in %, money in yuan."""
    share = board.share
    days = board.cohorts[0].days if board.cohorts else []
    return {
        "trend": {
            "months": board.trend_months,
            "series": {card.key: [_percent(v) for v in card.trend] for card in board.cards},
        },
        "gmv": {
            "private": float(yuan(share.private.gmv_cents)),
            "others": float(yuan(share.others.gmv_cents)),
        },
        "roi": {
            "channels": [row.channel_name for row in board.roi],
            "revenue": [float(yuan(row.attributed_revenue_cents)) for row in board.roi],
            "cost": [float(yuan(row.cost_cents)) for row in board.roi],
        },
        "cohorts": {
            "cohorts": [row.cohort for row in board.cohorts],
            "days": days,
            # [mark index, cohort index, reachable share in %], only for marks that have passed
            "cells": [
                [k, i, round((row.reachable_share[k] or 0) * 100, 1)]
                for i, row in enumerate(board.cohorts)
                for k in range(len(days))
                if row.complete[k]
            ],
        },
        "rfm": {
            "layers": [layer.layer for layer in board.layers],
            "customers": [layer.customers for layer in board.layers],
        },
        "stages": {"stages": list(board.stages), "counts": list(board.stages.values())},
    }


@router.get("/overview")
def overview_page(request: Request, session: DbSession, actor: CurrentActor, months: int = 12) -> Response:
    actor.require(Permission.READ)
    try:
        board = overview.get_dashboard(session, actor=actor, months=months)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "overview/index.html",
        {
            "figures": board.overview,
            "board": board,
            "chart": chart_data(board.overview),
            "charts": dashboard_charts(board),
            "months": months,
            "month_choices": MONTH_CHOICES,
        },
        session=session,
        actor=actor,
    )


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _csv_of(board: Dashboard, chart: str) -> tuple[list[str], list[Sequence[Any]]]:
    """The header and rows of one chart's CSV: shares from 0 to 1 (empty where there is no figure),
    money in yuan."""
    if chart == "revenue":
        figures = board.overview
        return ["month", *(s.channel_key for s in figures.series), "total_yuan"], [
            (
                month.strftime("%Y-%m"),
                *(yuan(s.net_revenue_cents[i]) for s in figures.series),
                yuan(figures.month_totals_cents[i]),
            )
            for i, month in enumerate(figures.months)
        ]
    if chart == "metrics":
        return ["month", *overview.METRIC_KEYS], [
            (month, *(_share(card.trend[i]) for card in board.cards))
            for i, month in enumerate(board.trend_months)
        ]
    if chart == "gmv":
        share = board.share
        return ["group", "buyers", "purchases", "gmv_yuan", "gmv_share"], [
            ("private", share.private.buyers, share.private.purchases, yuan(share.private.gmv_cents), _share(share.gmv_share)),
            ("others", share.others.buyers, share.others.purchases, yuan(share.others.gmv_cents), ""),
        ]  # fmt: skip
    if chart == "roi":
        return ["channel", "attributed_revenue_yuan", "cost_yuan", "roi", "new_customers", "cac_yuan"], [
            (
                r.channel_name,
                yuan(r.attributed_revenue_cents),
                yuan(r.cost_cents),
                "" if r.roi is None else r.roi,
                r.new_customers,
                "" if r.cac_cents is None else yuan(round(r.cac_cents)),
            )
            for r in board.roi
        ]
    if chart == "cohorts":
        return ["cohort", "customers", "days", "reachable", "reachable_share", "complete"], [
            (row.cohort, row.customers, n, row.reachable[k], _share(row.reachable_share[k]), int(row.complete[k]))
            for row in board.cohorts
            for k, n in enumerate(row.days)
        ]  # fmt: skip
    if chart == "rfm":
        total = board.layer_money_cents
        return ["layer", "customers", "monetary_yuan", "money_share"], [
            (
                layer.layer,
                layer.customers,
                yuan(layer.monetary_cents),
                _share(layer.monetary_cents / total if total else None),
            )
            for layer in board.layers
        ]
    return ["stage", "customers"], list(board.stages.items())


@router.get("/overview/data.csv")
def overview_csv(
    request: Request, session: DbSession, actor: CurrentActor, chart: str, months: int = 12
) -> Response:
    """The data of one chart of the overview (`chart`: revenue, metrics, gmv, roi, cohorts, rfm or
    stages) as CSV, for the same months as the page."""
    actor.require(Permission.READ)
    if chart not in CHARTS:
        return render_error(
            request,
            NotFound(f"no chart {chart!r} on the overview", where="chart", hint=", ".join(CHARTS)),
            session=session,
            actor=actor,
        )
    try:
        board = overview.get_dashboard(session, actor=actor, months=months)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    header, rows = _csv_of(board, chart)
    figures = board.overview
    span = f"{figures.months[0]:%Y-%m}-{figures.months[-1]:%Y-%m}"
    return csv_download(f"overview-{chart}-{span}.csv", header, rows)
