"""JSON routes of experiments: create, read, start, stop, assign a customer, and the results."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.experiments import service
from siyu.experiments.schemas import AssignIn, AssignOut, ExperimentIn, ExperimentOut, VariantOut
from siyu.experiments.service import ExperimentResults
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


def _out(session: Session, actor: Actor, experiment_id: int) -> ExperimentOut:
    experiment, variants = service.get_experiment(session, actor=actor, experiment_id=experiment_id)
    return ExperimentOut(
        id=experiment.id,
        key=experiment.key,
        name=experiment.name,
        status=experiment.status,
        holdout_share=experiment.holdout_share,
        goal_event=experiment.goal_event,
        goal_window_days=experiment.goal_window_days,
        variants=[VariantOut(name=v.name, weight=v.weight) for v in variants],
        created_at=experiment.created_at,
        started_at=experiment.started_at,
        stopped_at=experiment.stopped_at,
    )


@router.post("", response_model=ExperimentOut, status_code=201)
def create(body: ExperimentIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> ExperimentOut:
    """A draft experiment; start it to assign customers."""
    experiment = service.create_experiment(
        session,
        actor=actor,
        key=body.key,
        name=body.name,
        variants=body.variants,
        holdout_share=body.holdout_share,
        goal_event=body.goal_event,
        goal_window_days=body.goal_window_days,
    )
    return _out(session, actor, experiment.id)


@router.get("/{experiment_id}", response_model=ExperimentOut)
def get(experiment_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> ExperimentOut:
    return _out(session, actor, experiment_id)


@router.post("/{experiment_id}/start", response_model=ExperimentOut)
def start(experiment_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> ExperimentOut:
    service.start_experiment(session, actor=actor, experiment_id=experiment_id)
    return _out(session, actor, experiment_id)


@router.post("/{experiment_id}/stop", response_model=ExperimentOut)
def stop(experiment_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> ExperimentOut:
    service.stop_experiment(session, actor=actor, experiment_id=experiment_id)
    return _out(session, actor, experiment_id)


@router.post("/{experiment_id}/assign", response_model=AssignOut)
def assign(
    experiment_id: int, body: AssignIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> AssignOut:
    """The customer's arm, recording their exposure the first time (the same answer ever after)."""
    variant = service.assign_for(
        session, actor=actor, experiment_id=experiment_id, customer_id=body.customer_id
    )
    return AssignOut(customer_id=body.customer_id, variant=variant)


@router.get("/{experiment_id}/results", response_model=ExperimentResults)
def results(
    experiment_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> ExperimentResults:
    """Per arm: exposed, converted, revenue per customer; each arm against the control (z-test, Welch,
    chance to beat, Holm-corrected p); the sample-ratio check."""
    return service.analyse(session, actor=actor, experiment_id=experiment_id)
