"""`siyu clv fit`: fit a purchase or spend model to a plain transaction file and print the result as
JSON, so an analyst can check the models on any data without a workspace."""

from __future__ import annotations

import json
from datetime import date
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


def register(app: typer.Typer) -> None:
    app.add_typer(clv_app, name="clv")
