"""JSON routes of membership: points rules (`manage`), a customer's ledger and member view (`read`),
points adjustments and actions (`write`), tiers (`manage` to define)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from siyu.auth.service import Actor, Permission
from siyu.membership import service
from siyu.membership.schemas import (
    ActionIn,
    AdjustIn,
    EntryOut,
    MemberView,
    RulesIn,
    RulesOut,
    TierIn,
    TierOut,
)
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api", tags=["membership"])


class PointsOut(BaseModel):
    customer_id: int
    balance: int
    entries: list[EntryOut]


class ActionOut(BaseModel):
    entry: EntryOut | None  # None: the rules give this action no points


@router.get("/points-rules", response_model=RulesOut)
def get_rules(session: DbSession, actor: Actor = require(Permission.READ)) -> RulesOut:
    return service.rules_out(service.get_rules(session, workspace_id=actor.workspace_id))


@router.put("/points-rules", response_model=RulesOut)
def set_rules(body: RulesIn, session: DbSession, actor: Actor = require(Permission.MANAGE)) -> RulesOut:
    return service.rules_out(service.set_rules(session, actor=actor, body=body))


@router.get("/customers/{customer_id}/points", response_model=PointsOut)
def points(customer_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> PointsOut:
    """The balance and the newest ledger entries."""
    entries = service.customer_ledger(session, actor=actor, customer_id=customer_id)
    return PointsOut(
        customer_id=customer_id,
        balance=service.balance(session, workspace_id=actor.workspace_id, customer_id=customer_id),
        entries=entries,
    )


@router.post("/customers/{customer_id}/points/adjust", response_model=EntryOut)
def adjust(
    customer_id: int, body: AdjustIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> EntryOut:
    """Add or take points (never below zero: 409); a retry with the same idempotency_key applies once."""
    entry = service.adjust(
        session,
        actor=actor,
        customer_id=customer_id,
        points=body.points,
        reason=body.reason,
        idempotency_key=body.idempotency_key,
    )
    return EntryOut.model_validate(entry)


@router.post("/customers/{customer_id}/points/actions", response_model=ActionOut)
def action(
    customer_id: int, body: ActionIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> ActionOut:
    """Points for a sign-up, review, referral or custom action, once per (action, source_ref)."""
    entry = service.earn_for_action_by_actor(
        session,
        actor=actor,
        customer_id=customer_id,
        action=body.action,
        source_ref=body.source_ref,
        points=body.points,
    )
    return ActionOut(entry=EntryOut.model_validate(entry) if entry is not None else None)


@router.get("/customers/{customer_id}/membership", response_model=MemberView)
def membership(customer_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> MemberView:
    """Balance, ledger, tier and tier history, and coupons held."""
    return service.member_view(session, actor=actor, customer_id=customer_id)


@router.get("/tiers", response_model=list[TierOut])
def tiers(session: DbSession, actor: Actor = require(Permission.READ)) -> list[TierOut]:
    return service.list_tiers(session, workspace_id=actor.workspace_id)


@router.post("/tiers", response_model=TierOut, status_code=201)
def create_tier(body: TierIn, session: DbSession, actor: Actor = require(Permission.MANAGE)) -> TierOut:
    return service.create_tier(session, actor=actor, body=body)
