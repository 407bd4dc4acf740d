"""JSON routes of predicted value (客户价值): the workspace's scoring settings and a scoring run now."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from siyu.auth.service import Actor, Permission
from siyu.clv import scoring_settings
from siyu.clv import service as clv
from siyu.clv.scoring_settings import PurchaseModel, ScoringConfig
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/clv", tags=["clv"])


class ScoringSettingsIn(BaseModel):
    model: PurchaseModel = Field("bgnbd", description="Purchase model: BG/NBD or Pareto/NBD.")
    horizon_months: int = Field(12, description="Months of future value in a customer's CLV (1–60).")
    monthly_discount_rate: float = Field(0.01, description="Discount per month, e.g. 0.01 for 1 %.")


class ScoringSettingsOut(ScoringSettingsIn):
    pass


class ScoreIn(BaseModel):
    as_of: datetime | None = Field(None, description="Fit on purchases before this time (default now).")


class ScoreOut(BaseModel):
    scored: int
    model: str
    params: dict[str, float]
    spend_params: dict[str, float]
    as_of: date
    total_clv_cents: int


@router.get("/settings", response_model=ScoringSettingsOut)
def get_settings(session: DbSession, actor: Actor = require(Permission.READ)) -> ScoringSettingsOut:
    """The workspace's scoring settings (the defaults while none are saved)."""
    config = scoring_settings.settings_of(session, workspace_id=actor.workspace_id)
    return ScoringSettingsOut(**config.as_dict())


@router.put("/settings", response_model=ScoringSettingsOut)
def put_settings(
    body: ScoringSettingsIn, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> ScoringSettingsOut:
    """Save the workspace's scoring settings; the daily scoring and "score now" use them."""
    config = scoring_settings.update_settings(session, actor=actor, config=ScoringConfig(**body.model_dump()))
    return ScoringSettingsOut(**config.as_dict())


@router.post("/runs", response_model=ScoreOut, status_code=201)
def score(body: ScoreIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> ScoreOut:
    """Fit and score every buyer with the workspace's settings, replacing the last run."""
    run = clv.score_workspace(session, actor=actor, as_of=body.as_of)
    return ScoreOut(**run.__dict__)
