"""The experiment results pages (实验): the workspace's experiments, and per experiment each arm's
exposures and conversions, every variant against the control with intervals, p-values and
chance-to-beat, and the sample-ratio check."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.auth.service import Permission
from siyu.core.errors import NotFound
from siyu.experiments import service as experiments
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)


@router.get("/experiments")
def list_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return render(
        request,
        "experiments/list.html",
        {"experiments": experiments.list_experiments(session, actor=actor)},
        session=session,
        actor=actor,
    )


@router.get("/experiments/{experiment_id}")
def results_page(request: Request, session: DbSession, actor: CurrentActor, experiment_id: int) -> Response:
    actor.require(Permission.READ)
    try:
        experiment, variants = experiments.get_experiment(session, actor=actor, experiment_id=experiment_id)
        results = experiments.analyse(session, actor=actor, experiment_id=experiment_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "experiments/results.html",
        {"experiment": experiment, "variants": variants, "results": results},
        session=session,
        actor=actor,
    )
