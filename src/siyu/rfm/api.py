"""JSON routes of RFM (分层): the eight layers of the last run, a run now, and the workspace's settings."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from siyu.auth.service import Actor, Permission
from siyu.rfm import service
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/rfm", tags=["rfm"])

Cuts = tuple[float, float, float, float]


class RfmSettingsIn(BaseModel):
    window_days: int = Field(365, description="Purchases of the last N days count (7–3650).")
    method: Literal["quintile", "threshold"] = Field(
        "quintile", description="Scores 1–5 by quintiles of the buyers, or by the cut points below."
    )
    recency_days: Cuts = Field(
        (15, 30, 60, 90), description="Days since the last purchase: ≤ the first is R 5."
    )
    frequency: Cuts = Field((1, 2, 3, 5), description="Purchases in the window: ≤ the first is F 1.")
    monetary_yuan: Cuts = Field((50, 100, 200, 500), description="Net spend in yuan: ≤ the first is M 1.")
    layer_cut: float | None = Field(
        None, description="A score at or above this is high for the eight layers; null: above the mean score."
    )

    def config(self) -> service.RfmConfig:
        return service.RfmConfig(
            window_days=self.window_days,
            method=self.method,
            thresholds=service.Thresholds(self.recency_days, self.frequency, self.monetary_yuan),
            layer_cut=self.layer_cut,
        )


class RfmSettingsOut(RfmSettingsIn):
    @classmethod
    def of(cls, config: service.RfmConfig) -> RfmSettingsOut:
        return cls.model_validate(service.settings_detail(config))


class LayerOut(BaseModel):
    layer: str
    customers: int
    monetary_cents: int
    mean_recency_days: float | None


class RunIn(BaseModel):
    now: datetime | None = Field(None, description="Score as at this time (default now), with its offset.")


class RunOut(BaseModel):
    scored: int
    method: str
    window_days: int
    layer_cut: float | None
    now: datetime
    layers: list[LayerOut]


@router.get("/layers", response_model=list[LayerOut])
def layers(session: DbSession, actor: Actor = require(Permission.READ)) -> list[LayerOut]:
    """The eight layers as the last run left them: customers, money in the window, mean recency."""
    return [LayerOut(**layer.__dict__) for layer in service.layer_summary(session, actor=actor)]


@router.post("/runs", response_model=RunOut, status_code=201)
def run(body: RunIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> RunOut:
    """Score every buyer with the workspace's settings now (or as at `now`), replacing the last run."""
    done = service.compute_rfm(session, actor=actor, now=body.now)
    return RunOut(
        scored=done.scored,
        method=done.method,
        window_days=done.window_days,
        layer_cut=done.layer_cut,
        now=done.now,
        layers=[LayerOut(**layer.__dict__) for layer in done.layers],
    )


@router.get("/settings", response_model=RfmSettingsOut)
def get_settings(session: DbSession, actor: Actor = require(Permission.READ)) -> RfmSettingsOut:
    """The workspace's RFM settings (the defaults while none are saved)."""
    return RfmSettingsOut.of(service.settings_of(session, workspace_id=actor.workspace_id))


@router.put("/settings", response_model=RfmSettingsOut)
def put_settings(
    body: RfmSettingsIn, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> RfmSettingsOut:
    """Save the workspace's RFM settings; the daily run and "score now" use them from the next run."""
    return RfmSettingsOut.of(service.update_settings(session, actor=actor, config=body.config()))
