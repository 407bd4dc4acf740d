"""A workspace's CLV scoring settings: which purchase model the daily run (and "score now") fits, over
how many months value is predicted, and the monthly discount rate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.clv.models import ClvSettings
from siyu.core import audit
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import utcnow

PurchaseModel = Literal["bgnbd", "pareto"]
MODELS: tuple[PurchaseModel, ...] = ("bgnbd", "pareto")


@dataclass(frozen=True)
class ScoringConfig:
    model: PurchaseModel = "bgnbd"
    horizon_months: int = 12
    monthly_discount_rate: float = 0.01

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(config: ScoringConfig) -> None:
    """Refuse a configuration the scoring cannot run with, naming the field."""
    if config.model not in MODELS:
        raise ValidationFailed(
            f"unknown purchase model {config.model!r}", where="model", hint="bgnbd or pareto"
        )
    if not 1 <= config.horizon_months <= 60:
        raise ValidationFailed(
            f"a horizon of {config.horizon_months} months is out of range",
            where="horizon_months",
            hint="1 to 60 months",
        )
    if not 0 <= config.monthly_discount_rate < 1:
        raise ValidationFailed(
            f"a monthly discount rate of {config.monthly_discount_rate} is out of range",
            where="monthly_discount_rate",
            hint="a fraction from 0 up to 1, e.g. 0.01 for 1 % a month",
        )


def settings_of(session: Session, *, workspace_id: int) -> ScoringConfig:
    """The workspace's scoring settings (the defaults while it has saved none)."""
    row = session.get(ClvSettings, workspace_id)
    if row is None:
        return ScoringConfig()
    return ScoringConfig(
        model=row.model,  # type: ignore[arg-type]  # only valid models are saved
        horizon_months=row.horizon_months,
        monthly_discount_rate=row.monthly_discount_rate,
    )


def update_settings(session: Session, *, actor: Actor, config: ScoringConfig) -> ScoringConfig:
    """Save the workspace's scoring settings (audited); the next run uses them."""
    actor.require(Permission.MANAGE)
    check(config)
    row = session.get(ClvSettings, actor.workspace_id)
    if row is None:
        row = ClvSettings(workspace_id=actor.workspace_id)
        session.add(row)
    row.model, row.horizon_months = config.model, config.horizon_months
    row.monthly_discount_rate, row.updated_at = config.monthly_discount_rate, utcnow()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="clv.settings",
        target_type="workspace",
        target_id=actor.workspace_id,
        detail=config.as_dict(),
    )
    return config
