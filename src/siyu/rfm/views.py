"""The RFM and lifecycle page (分层): the eight RFM layers with their customers, share of money and
mean recency; customers per lifecycle stage; the flows between stages over the last 90 days; the
workspace's RFM settings and a run now."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.lifecycle import service as lifecycle
from siyu.rfm import service as rfm
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)
FLOW_DAYS = 90


def _cuts_text(cuts: tuple[float, ...]) -> str:
    return ", ".join(f"{v:g}" for v in cuts)


def _settings_form(config: rfm.RfmConfig) -> dict[str, str]:
    return {
        "window_days": str(config.window_days),
        "method": config.method,
        "recency_days": _cuts_text(config.thresholds.recency_days),
        "frequency": _cuts_text(config.thresholds.frequency),
        "monetary_yuan": _cuts_text(config.thresholds.monetary_yuan),
        "layer_split": "mean" if config.layer_cut is None else "score",
        "layer_cut": "3" if config.layer_cut is None else f"{config.layer_cut:g}",
    }


@router.get("/rfm")
def rfm_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return _page(request, session, actor)


def _page(
    request: Request,
    session: DbSession,
    actor: Actor,
    *,
    form: dict[str, str] | None = None,
    error: ValidationFailed | None = None,
) -> Response:
    layers = rfm.layer_summary(session, actor=actor)
    total_money = sum(layer.monetary_cents for layer in layers)
    stages = lifecycle.stage_counts(session, actor=actor)
    end = utcnow()
    flows = lifecycle.flows(session, actor=actor, start=end - timedelta(days=FLOW_DAYS), end=end)
    chart: dict[str, Any] = {
        "layers": [layer.layer for layer in layers],
        "customers": [layer.customers for layer in layers],
        "stages": list(stages),
        "stage_counts": list(stages.values()),
        "flows": [
            {"source": f.from_stage or "∅", "target": f.to_stage, "value": f.customers}
            for f in flows
            if f.from_stage and f.from_stage != f.to_stage
        ],
    }
    return render(
        request,
        "rfm/index.html",
        {
            "layers": layers,
            "total_money": total_money,
            "stages": stages,
            "flows": flows,
            "flow_days": FLOW_DAYS,
            "last_run": rfm.last_run_at(session, workspace_id=actor.workspace_id),
            "chart": chart,
            "settings": form or _settings_form(rfm.settings_of(session, workspace_id=actor.workspace_id)),
            "error": error,
            "can_manage": actor.can(Permission.MANAGE),
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
        status_code=422 if error else 200,
    )


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a number", where=where) from None


def _config_of(values: dict[str, str]) -> rfm.RfmConfig:
    """The settings the form describes; a value that is no number is refused with its field."""

    def cuts(name: str) -> tuple[float, float, float, float]:
        parts = [p for p in values[name].replace("，", ",").split(",") if p.strip()]
        found = tuple(_number(p.strip(), name) for p in parts)
        if len(found) != 4:
            raise ValidationFailed(
                f"{values[name]!r} is not four numbers",
                where=name,
                hint="four rising numbers, e.g. 15, 30, 60, 90",
            )
        return found  # type: ignore[return-value]

    window = _number(values["window_days"], "window_days")
    return rfm.RfmConfig(
        window_days=int(window),
        method=values["method"],  # type: ignore[arg-type]  # the service refuses an unknown method
        thresholds=rfm.Thresholds(cuts("recency_days"), cuts("frequency"), cuts("monetary_yuan")),
        layer_cut=None if values["layer_split"] == "mean" else _number(values["layer_cut"], "layer_cut"),
    )


@router.post("/rfm/settings")
def save_settings(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    """Save the RFM settings the form holds; a bad value shows the form again with what to fix."""
    actor.require(Permission.MANAGE)
    values = {
        name: form_text(form, name)
        for name in (
            "window_days",
            "method",
            "recency_days",
            "frequency",
            "monetary_yuan",
            "layer_split",
            "layer_cut",
        )
    }
    try:
        rfm.update_settings(session, actor=actor, config=_config_of(values))
    except ValidationFailed as error:  # refused before anything is written
        return _page(request, session, actor, form=values, error=error)
    return RedirectResponse("/rfm", status_code=303)


@router.post("/rfm/score")
def score_now(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    """Score every buyer now with the workspace's settings, then show the page."""
    actor.require(Permission.WRITE)
    try:
        rfm.compute_rfm(session, actor=actor)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse("/rfm", status_code=303)
