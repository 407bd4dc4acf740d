"""`siyu clv fit`: fit a purchase or spend model to a plain transaction file and print the result as
JSON, so an analyst can check the models on any data without a workspace."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

import typer

from siyu.clv.fitters.base import Fitter
from siyu.clv.fitters.bgnbd import BetaGeoFitter, ModifiedBetaGeoFitter
from siyu.clv.fitters.gamma_gamma import GammaGammaFitter
from siyu.clv.fitters.pareto_nbd import ParetoNBDFitter
from siyu.clv.summary import read_transactions, summarise
from siyu.core.errors import ValidationFailed

clv_app = typer.Typer(
    help="Predictive customer lifetime value (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma).",
    no_args_is_help=True,
)


class Model(StrEnum):
    bgnbd = "bgnbd"
    mbgnbd = "mbgnbd"
    pareto = "pareto"
    gammagamma = "gammagamma"


class Unit(StrEnum):
    week = "week"
    day = "day"


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{value!r} is not a date", where=option, hint="write it as YYYY-MM-DD"
        ) from None


@clv_app.command("fit")
def fit(
    transactions: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV with customer_id,date,amount, or the CDNOW format."
    ),
    model: Model = typer.Option(Model.bgnbd, "--model", help="Which model to fit."),
    calibration_end: str | None = typer.Option(
        None, "--calibration-end", help="Last day of the fitting period (YYYY-MM-DD); default: the last date."
    ),
    unit: Unit = typer.Option(Unit.week, "--unit", help="Time unit of recency and T."),
) -> None:
    """Fit MODEL by maximum likelihood and print its parameters, standard errors and log likelihood."""
    histories = summarise(
        read_transactions(str(transactions)),
        calibration_end=_date(calibration_end, "--calibration-end"),
        unit=unit.value,
    )
    fitter: Fitter
    if model is Model.gammagamma:
        repeat = histories.frequency > 0
        if not repeat.any():
            raise ValidationFailed("no customer bought twice: the spend model has nothing to fit")
        fitter = GammaGammaFitter().fit(histories.frequency[repeat], histories.monetary_value[repeat])
        customers = int(repeat.sum())
    else:
        purchase_models: dict[Model, type[BetaGeoFitter] | type[ParetoNBDFitter]] = {
            Model.bgnbd: BetaGeoFitter,
            Model.mbgnbd: ModifiedBetaGeoFitter,
            Model.pareto: ParetoNBDFitter,
        }
        fitter = purchase_models[model]().fit(histories.frequency, histories.recency, histories.T)
        customers = len(histories)
    typer.echo(json.dumps({**fitter.summary(), "customers": customers, "unit": unit.value}, indent=2))


@clv_app.command("score")
def score(
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace slug (default: the only one)."),
    model: str | None = typer.Option(
        None, "--model", help="Purchase model: bgnbd or pareto (default: the workspace's settings)."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Score as of this day (YYYY-MM-DD); default: now."
    ),
    horizon_months: int | None = typer.Option(
        None, "--horizon-months", help="Months of value to predict (default: the settings')."
    ),
    acting_as: str | None = typer.Option(
        None, "--as", help="Act as this member (email); default: the owner."
    ),
) -> None:
    """Score every buyer of the workspace (P(alive), purchases in 90 days, CLV) for segments and profiles."""
    from zoneinfo import ZoneInfo

    from siyu.auth import service as auth
    from siyu.clv import service
    from siyu.core.db import get_database
    from siyu.workspaces import service as workspaces

    with get_database().transaction() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
        day = _date(as_of, "--as-of")
        moment = None
        if day is not None:
            after = day.toordinal() + 1
            moment = datetime.combine(
                date.fromordinal(after), datetime.min.time(), tzinfo=ZoneInfo(found.timezone)
            )
        run = service.score_workspace(
            session,
            actor=actor,
            as_of=moment,
            model=model,  # type: ignore[arg-type]  # the service refuses an unknown model by name
            horizon_months=horizon_months,
        )
    typer.echo(
        json.dumps(
            {
                "scored": run.scored,
                "model": run.model,
                "as_of": run.as_of.isoformat(),
                "params": run.params,
                "spend_params": run.spend_params,
                "total_clv_cents": run.total_clv_cents,
            },
            indent=2,
        )
    )


@clv_app.command("settings")
def settings(
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace slug (default: the only one)."),
    model: str | None = typer.Option(None, "--model", help="Purchase model: bgnbd or pareto."),
    horizon_months: int | None = typer.Option(None, "--horizon-months", help="Months of value to predict."),
    monthly_discount_rate: float | None = typer.Option(
        None, "--monthly-discount-rate", help="Discount per month, e.g. 0.01."
    ),
    acting_as: str | None = typer.Option(
        None, "--as", help="Act as this member (email); default: the owner."
    ),
) -> None:
    """Print the workspace's scoring settings as JSON; with options, change those and save (audited).
    The daily scoring and "score now" use them."""
    from dataclasses import replace

    from siyu.auth import service as auth
    from siyu.clv import scoring_settings
    from siyu.core.db import get_database
    from siyu.workspaces import service as workspaces

    given = {
        name: value
        for name, value in (
            ("model", model),
            ("horizon_months", horizon_months),
            ("monthly_discount_rate", monthly_discount_rate),
        )
        if value is not None
    }
    with get_database().transaction() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
        config = scoring_settings.settings_of(session, workspace_id=found.id)
        if given:
            config = scoring_settings.update_settings(
                session,
                actor=actor,
                config=replace(config, **given),  # type: ignore[arg-type]
            )
    typer.echo(json.dumps(config.as_dict(), indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(clv_app, name="clv")
