"""The lifecycle page (生命周期): customers per stage, the funnel lead → new → active → loyal, and the
moves between stages over a chosen period as a Sankey, each chart's data also as CSV; the workspace's
stage thresholds, editable by managers."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.lifecycle import service
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import csv_download, render, render_error
from siyu.workspaces import service as workspaces

router = APIRouter(include_in_schema=False)
DEFAULT_DAYS = 90
CHARTS = ("stages", "funnel", "flows")
FIRST = "∅"  # the left node of a first placement (no stage before)


def _period(
    session: DbSession, actor: Actor, start: date | None, end: date | None
) -> tuple[date, date, datetime, datetime]:
    """The chosen days (default: the last 90, ending today in the workspace's zone) and the instants
    [start, end) they span."""
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=actor.workspace_id).timezone)
    today = utcnow().astimezone(zone).date()
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise ValidationFailed("the period ends before it starts", where="end", hint="swap the two dates")
    begin = datetime.combine(start, time.min, tzinfo=zone)
    finish = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
    return start, end, begin, finish


def _report(session: DbSession, actor: Actor, begin: datetime, finish: datetime) -> dict[str, Any]:
    return {
        "stages": service.stage_counts(session, actor=actor),
        "funnel": service.funnel(session, actor=actor),
        "flows": service.flows(session, actor=actor, start=begin, end=finish),
    }


@router.get("/lifecycle")
def lifecycle_page(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    start: date | None = None,
    end: date | None = None,
) -> Response:
    actor.require(Permission.READ)
    return _render(request, session, actor, start, end)


def _render(
    request: Request,
    session: DbSession,
    actor: Actor,
    start: date | None,
    end: date | None,
    *,
    settings: dict[str, Any] | None = None,
    error: ValidationFailed | None = None,
) -> Response:
    try:
        first_day, last_day, begin, finish = _period(session, actor, start, end)
    except SiyuError as period_error:
        return render_error(request, period_error, session=session, actor=actor)
    report = _report(session, actor, begin, finish)
    moves = [f for f in report["flows"] if f.from_stage != f.to_stage]
    chart = {
        "stages": list(report["stages"]),
        "stage_counts": list(report["stages"].values()),
        "funnel": [{"stage": s.stage, "customers": s.customers} for s in report["funnel"]],
        # two columns of nodes (before → after), so that moves both ways still draw as a Sankey
        "flows": [
            {"source": f.from_stage or FIRST, "target": f.to_stage, "value": f.customers} for f in moves
        ],
    }
    return render(
        request,
        "lifecycle/index.html",
        {
            "report": report,
            "moves": moves,
            "start": first_day,
            "end": last_day,
            "chart": chart,
            "first": FIRST,
            "thresholds": service.settings_of(session, workspace_id=actor.workspace_id),
            "settings": settings or service.settings_of(session, workspace_id=actor.workspace_id).__dict__,
            "error": error,
            "can_manage": actor.can(Permission.MANAGE),
        },
        session=session,
        actor=actor,
        status_code=422 if error else 200,
    )


SETTING_FIELDS = {"loyal_orders": int, "dormant_factor": float, "dormant_days": int, "churn_days": int}


@router.post("/lifecycle/settings")
def save_settings(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    """Save the stage thresholds the form holds; a bad value shows the page again with what to fix."""
    actor.require(Permission.MANAGE)
    values = {name: form_text(form, name) for name in SETTING_FIELDS}
    try:
        parsed: dict[str, Any] = {}
        for name, kind in SETTING_FIELDS.items():
            try:
                parsed[name] = kind(values[name])
            except ValueError:
                raise ValidationFailed(f"{values[name]!r} is not a number", where=name) from None
        service.update_settings(session, actor=actor, thresholds=service.Thresholds(**parsed))
    except ValidationFailed as error:  # refused before anything is written
        return _render(request, session, actor, None, None, settings=values, error=error)
    return RedirectResponse("/lifecycle", status_code=303)


@router.get("/lifecycle/data.csv")
def lifecycle_csv(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    chart: str,
    start: date | None = None,
    end: date | None = None,
) -> Response:
    """One chart of the lifecycle page as CSV (`chart`: stages, funnel or flows), for the page's period."""
    actor.require(Permission.READ)
    if chart not in CHARTS:
        error = NotFound(f"no chart {chart!r} on the lifecycle page", where="chart", hint=", ".join(CHARTS))
        return render_error(request, error, session=session, actor=actor)
    try:
        first_day, last_day, begin, finish = _period(session, actor, start, end)
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    if chart == "stages":
        counts = service.stage_counts(session, actor=actor)
        return csv_download("lifecycle-stages.csv", ["stage", "customers"], counts.items())
    if chart == "funnel":
        steps = service.funnel(session, actor=actor)
        top = steps[0].customers if steps else 0
        return csv_download(
            "lifecycle-funnel.csv",
            ["stage", "customers", "share_of_leads"],
            [(s.stage, s.customers, f"{s.customers / top:.4f}" if top else "") for s in steps],
        )
    flows = service.flows(session, actor=actor, start=begin, end=finish)
    return csv_download(
        f"lifecycle-flows-{first_day}-{last_day}.csv",
        ["from_stage", "to_stage", "customers"],
        [(f.from_stage or "", f.to_stage, f.customers) for f in flows],
    )
