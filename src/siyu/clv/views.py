"""The CLV page (客户价值): the last scoring run, customers by predicted value and by P(alive), the
top customers, and the calibration/holdout chart that shows whether the purchase model predicts well.
Every chart's data downloads as CSV from the same service call that draws it. Managers set how the
workspace scores (model, horizon, discount rate)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from siyu.auth.service import Actor, Permission
from siyu.clv import scoring_settings
from siyu.clv import service as clv
from siyu.core.errors import NotFound, ValidationFailed
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import csv_download, render, render_error, yuan

router = APIRouter(include_in_schema=False)
TOP_CUSTOMERS = 20
DEFAULT_HOLDOUT_DAYS = 90


def _calibration(
    session: DbSession, actor: Actor, holdout_days: int, model: clv.PurchaseModel
) -> tuple[clv.Calibration | None, str | None]:
    try:
        return clv.calibration_check(session, actor=actor, holdout_days=holdout_days, model=model), None
    except ValidationFailed as error:
        return None, error.message


@router.get("/clv")
def clv_page(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    holdout_days: int = DEFAULT_HOLDOUT_DAYS,
    model: clv.PurchaseModel | None = None,
) -> Response:
    actor.require(Permission.READ)
    return _page(request, session, actor, holdout_days=holdout_days, model=model)


def _page(
    request: Request,
    session: DbSession,
    actor: Actor,
    *,
    holdout_days: int = DEFAULT_HOLDOUT_DAYS,
    model: clv.PurchaseModel | None = None,
    settings: dict[str, Any] | None = None,
    error: ValidationFailed | None = None,
) -> Response:
    saved = scoring_settings.settings_of(session, workspace_id=actor.workspace_id)
    model = model or saved.model
    summary = clv.score_summary(session, actor=actor)
    values = clv.value_distribution(session, actor=actor)
    alive = clv.p_alive_distribution(session, actor=actor)
    top = clv.top_customers(session, actor=actor, limit=TOP_CUSTOMERS)
    if not 7 <= holdout_days <= 730:
        return render_error(
            request,
            ValidationFailed(
                f"a holdout of {holdout_days} days is out of range", where="holdout_days", hint="7 to 730"
            ),
            session=session,
            actor=actor,
        )
    calibration, calibration_error = _calibration(session, actor, holdout_days, model)
    charts: dict[str, Any] = {
        "values": {"labels": [b.label for b in values], "customers": [b.customers for b in values]},
        "alive": {"labels": [b.label for b in alive], "customers": [b.customers for b in alive]},
        "calibration": None
        if calibration is None
        else {
            "labels": [b.frequency for b in calibration.buckets],
            "actual": [round(b.actual, 4) for b in calibration.buckets],
            "predicted": [round(b.predicted, 4) for b in calibration.buckets],
        },
    }
    return render(
        request,
        "clv/index.html",
        {
            "summary": summary,
            "values": values,
            "alive": alive,
            "top": top,
            "calibration": calibration,
            "calibration_error": calibration_error,
            "holdout_days": holdout_days,
            "model": model,
            "at_risk_p_alive": clv.AT_RISK_P_ALIVE,
            "can_write": actor.can(Permission.WRITE),
            "can_manage": actor.can(Permission.MANAGE),
            "settings": settings or saved.as_dict(),
            "models": scoring_settings.MODELS,
            "error": error,
            "charts": charts,
        },
        session=session,
        actor=actor,
        status_code=422 if error else 200,
    )


@router.post("/clv/settings")
def save_settings(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    """Save the scoring settings the form holds; a bad value shows the page again with what to fix."""
    actor.require(Permission.MANAGE)
    values = {name: form_text(form, name) for name in ("model", "horizon_months", "monthly_discount_rate")}
    try:
        try:
            horizon = int(values["horizon_months"])
        except ValueError:
            raise ValidationFailed(
                f"{values['horizon_months']!r} is not a whole number", where="horizon_months"
            ) from None
        try:
            rate = float(values["monthly_discount_rate"])
        except ValueError:
            raise ValidationFailed(
                f"{values['monthly_discount_rate']!r} is not a number", where="monthly_discount_rate"
            ) from None
        config = scoring_settings.ScoringConfig(
            model=values["model"],  # type: ignore[arg-type]  # refused by name when unknown
            horizon_months=horizon,
            monthly_discount_rate=rate,
        )
        scoring_settings.update_settings(session, actor=actor, config=config)
    except ValidationFailed as error:  # refused before anything is written
        return _page(request, session, actor, settings=values, error=error)
    return RedirectResponse("/clv", status_code=303)


@router.post("/clv/score")
def score_now(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    """Score every buyer again with the workspace's settings, then show the page."""
    actor.require(Permission.WRITE)
    try:
        clv.score_workspace(session, actor=actor)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse("/clv", status_code=303)


def _buckets(rows: Sequence[clv.DistributionBucket]) -> list[tuple[Any, ...]]:
    return [(b.label, b.customers, yuan(b.clv_cents)) for b in rows]


_CHARTS: dict[
    str, tuple[list[str], Callable[[DbSession, Actor, int, clv.PurchaseModel], list[tuple[Any, ...]]]]
] = {
    "values": (
        ["clv_band", "customers", "clv_yuan"],
        lambda s, a, h, m: _buckets(clv.value_distribution(s, actor=a)),
    ),
    "alive": (
        ["p_alive_band", "customers", "clv_yuan"],
        lambda s, a, h, m: _buckets(clv.p_alive_distribution(s, actor=a)),
    ),
    "calibration": (
        ["calibration_frequency", "customers", "actual_holdout_purchases", "predicted_holdout_purchases"],
        lambda s, a, h, m: [
            (b.frequency, b.customers, b.actual, b.predicted)
            for b in clv.calibration_check(s, actor=a, holdout_days=h, model=m).buckets
        ],
    ),
    "top": (
        ["customer_id", "name", "clv_yuan", "p_alive", "expected_purchases_90d", "clv_percentile"],
        lambda s, a, h, m: [
            (
                c.customer_id,
                c.name or "",
                yuan(c.clv_cents),
                c.p_alive,
                c.expected_purchases_90d,
                c.clv_percentile,
            )
            for c in clv.top_customers(s, actor=a, limit=500)
        ],
    ),
}


@router.get("/clv/data.csv")
def chart_csv(
    request: Request,
    chart: str,
    session: DbSession,
    actor: CurrentActor,
    holdout_days: int = DEFAULT_HOLDOUT_DAYS,
    model: clv.PurchaseModel = "bgnbd",
) -> Response:
    """The data of one chart of the page (`chart`: values, alive, calibration or top) as CSV."""
    actor.require(Permission.READ)
    if chart not in _CHARTS:
        return render_error(
            request,
            NotFound(f"no chart {chart!r} on the CLV page", where="chart", hint=", ".join(_CHARTS)),
            session=session,
            actor=actor,
        )
    header, rows = _CHARTS[chart]
    try:
        data = rows(session, actor, holdout_days, model)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return csv_download(f"clv-{chart}.csv", header, data)
