"""Scoring a workspace's buyers with the purchase and spend models: P(alive), purchases expected in the
next 90 days and discounted CLV, kept per customer for segments ("clv.p_alive < 0.3", "clv.percentile
>= 90") and the customer's profile. One run replaces the previous scores in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.clv.fitters.bgnbd import BetaGeoFitter
from siyu.clv.fitters.gamma_gamma import GammaGammaFitter
from siyu.clv.fitters.pareto_nbd import ParetoNBDFitter
from siyu.clv.models import CustomerScore
from siyu.clv.summary import summarise
from siyu.clv.value import customer_lifetime_value
from siyu.core import audit, domain_events
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.orders import service as orders
from siyu.workspaces import service as workspaces

PurchaseModel = Literal["bgnbd", "pareto"]
MIN_BUYERS = 20  # fewer buyers than this leave the models without the data to fit
MIN_REPEAT_BUYERS = 5
_CHUNK = 5_000

# what a segment rule may compare, by field, with the score column
SCORE_COLUMNS = {
    "p_alive": CustomerScore.p_alive,
    "expected_purchases_90d": CustomerScore.expected_purchases_90d,
    "clv_cents": CustomerScore.clv_cents,
    "clv_percentile": CustomerScore.clv_percentile,
}


@dataclass(frozen=True)
class ScoringRun:
    scored: int
    model: str
    params: dict[str, float]
    spend_params: dict[str, float]
    as_of: date
    total_clv_cents: int


def score_column(name: str, *, customer_id: Any) -> Any:
    """A correlated scalar subquery of one score of the customer `customer_id` (a column of the
    caller's statement); NULL for customers without a score."""
    return select(SCORE_COLUMNS[name]).where(CustomerScore.customer_id == customer_id).scalar_subquery()


def score_workspace(
    session: Session,
    *,
    actor: Actor,
    as_of: datetime | None = None,
    model: PurchaseModel = "bgnbd",
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> ScoringRun:
    """Fit the purchase model (BG/NBD or Pareto/NBD) and Gamma-Gamma to the workspace's purchases before
    `as_of` (default now; weeks of the workspace's calendar) and store every buyer's scores."""
    actor.require(Permission.WRITE)
    if model not in ("bgnbd", "pareto"):
        raise ValidationFailed(f"unknown purchase model {model!r}", where="model", hint="bgnbd or pareto")
    if not 1 <= horizon_months <= 60:
        raise ValidationFailed(
            f"a horizon of {horizon_months} months is out of range", where="horizon_months"
        )
    workspace_id = actor.workspace_id
    as_of = as_of or utcnow()
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=workspace_id).timezone)
    rows = session.execute(orders.daily_purchases(session, workspace_id=workspace_id, until=as_of)).all()
    if len(rows) == 0:
        raise ValidationFailed("this workspace has no purchases to score", hint="import orders first")
    log = pl.DataFrame(
        {
            "customer_id": [int(r.customer_id) for r in rows],
            "date": [r.day if isinstance(r.day, date) else date.fromisoformat(str(r.day)) for r in rows],
            "amount": [int(r.net_cents or 0) / 100 for r in rows],
        },
        schema={"customer_id": pl.Int64, "date": pl.Date, "amount": pl.Float64},
    )
    calibration_end = (as_of - timedelta(microseconds=1)).astimezone(zone).date()
    histories = summarise(log, calibration_end=calibration_end, unit="week")
    repeat = histories.frequency > 0
    if len(histories) < MIN_BUYERS or int(repeat.sum()) < MIN_REPEAT_BUYERS:
        raise ValidationFailed(
            f"{len(histories)} buyers, {int(repeat.sum())} of them repeat buyers: too few to fit the models",
            hint=f"scoring needs at least {MIN_BUYERS} buyers and {MIN_REPEAT_BUYERS} repeat buyers",
        )
    purchases = (ParetoNBDFitter() if model == "pareto" else BetaGeoFitter()).fit(
        histories.frequency, histories.recency, histories.T
    )
    # spend of repeat purchases must be positive for the spend model (a fully discounted order is not)
    positive = repeat & (histories.monetary_value > 0)
    spend = GammaGammaFitter().fit(histories.frequency[positive], histories.monetary_value[positive])
    p_alive = purchases.probability_alive(histories.frequency, histories.recency, histories.T)
    expected = purchases.expected_purchases(90 / 7, histories.frequency, histories.recency, histories.T)
    clv_yuan = customer_lifetime_value(
        purchases,  # type: ignore[arg-type]
        spend,
        histories,
        periods=horizon_months,
        period_length=30 / 7,
        discount_rate=monthly_discount_rate,
    )
    clv_cents = np.rint(np.nan_to_num(clv_yuan, nan=0.0) * 100).astype(np.int64)
    order = np.argsort(clv_cents, kind="stable")
    percentile = np.empty(len(clv_cents))
    percentile[order] = (np.arange(len(clv_cents)) + 1) / len(clv_cents) * 100
    session.execute(delete(CustomerScore).where(CustomerScore.workspace_id == workspace_id))
    now = utcnow()
    records = [
        {
            "customer_id": int(customer),
            "workspace_id": workspace_id,
            "model": model,
            "p_alive": float(alive),
            "expected_purchases_90d": float(exp),
            "clv_cents": int(cents),
            "clv_percentile": float(pct),
            "scored_at": now,
        }
        for customer, alive, exp, cents, pct in zip(
            histories.customer_ids, p_alive, expected, clv_cents, percentile, strict=True
        )
    ]
    for start in range(0, len(records), _CHUNK):
        session.execute(insert(CustomerScore), records[start : start + _CHUNK])
    run = ScoringRun(
        scored=len(records),
        model=model,
        params=purchases.params_,
        spend_params=spend.params_,
        as_of=calibration_end,
        total_clv_cents=int(clv_cents.sum()),
    )
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor.user_id,
        action="clv.score",
        target_type="workspace",
        target_id=workspace_id,
        detail={"scored": run.scored, "model": model, "params": run.params, "spend_params": run.spend_params},
    )
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type="clv.scored",
        customer_id=None,
        payload={"scored": run.scored, "model": model, "as_of": calibration_end.isoformat()},
    )
    return run


def customer_score(session: Session, *, workspace_id: int, customer_id: int) -> CustomerScore | None:
    """The customer's scores from the last run, if they were scored."""
    score = session.get(CustomerScore, customer_id)
    return score if score is not None and score.workspace_id == workspace_id else None
