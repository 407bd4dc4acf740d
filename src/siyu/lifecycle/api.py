"""JSON routes of lifecycle stages (`read`): customers per stage, the funnel lead → new → active →
loyal, and the moves between stages over a period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from siyu.auth.service import Actor, Permission
from siyu.core.timeutil import utcnow
from siyu.lifecycle import service
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/lifecycle", tags=["lifecycle"])


class SettingsIn(BaseModel):
    loyal_orders: int = Field(4, description="Purchases from which a customer is loyal (at least 2).")
    dormant_factor: float = Field(
        3.0, description="Dormant after this many times the customer's own gap between purchases (> 1)."
    )
    dormant_days: int = Field(60, description="…or after this many days without a purchase.")
    churn_days: int = Field(180, description="Churned after this many days without a purchase (> dormant).")


class SettingsOut(SettingsIn):
    pass


class FunnelStepOut(BaseModel):
    stage: str
    customers: int


class FlowOut(BaseModel):
    from_stage: str | None
    to_stage: str
    customers: int


@router.get("/stages", response_model=dict[str, int])
def stage_counts(session: DbSession, actor: Actor = require(Permission.READ)) -> dict[str, int]:
    """Customers per stage as the last sweep left them."""
    return service.stage_counts(session, actor=actor)


@router.get("/funnel", response_model=list[FunnelStepOut])
def funnel(session: DbSession, actor: Actor = require(Permission.READ)) -> list[FunnelStepOut]:
    """How many customers got at least as far as lead, new, active and loyal."""
    return [FunnelStepOut(stage=s.stage, customers=s.customers) for s in service.funnel(session, actor=actor)]


@router.get("/flows", response_model=list[FlowOut])
def flows(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    start: Annotated[datetime | None, Query(description="Default: 90 days before end.")] = None,
    end: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> list[FlowOut]:
    """Customers who moved from each stage to each other in [start, end); from null is a first placement."""
    end = end or utcnow()
    start = start or end - timedelta(days=90)
    return [
        FlowOut(from_stage=f.from_stage, to_stage=f.to_stage, customers=f.customers)
        for f in service.flows(session, actor=actor, start=start, end=end)
    ]


@router.get("/settings", response_model=SettingsOut)
def get_settings(session: DbSession, actor: Actor = require(Permission.READ)) -> SettingsOut:
    """The workspace's stage thresholds (the defaults while none are saved)."""
    return SettingsOut(**service.settings_of(session, workspace_id=actor.workspace_id).__dict__)


@router.put("/settings", response_model=SettingsOut)
def put_settings(
    body: SettingsIn, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> SettingsOut:
    """Save the workspace's stage thresholds; the next sweep (daily, or `siyu lifecycle`) applies them."""
    saved = service.update_settings(session, actor=actor, thresholds=service.Thresholds(**body.model_dump()))
    return SettingsOut(**saved.__dict__)
