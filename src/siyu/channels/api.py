"""JSON routes for channels, their costs and stores (reading needs `read`, changing needs `manage`)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query, Response

from siyu.auth.service import Actor, Permission
from siyu.channels import service
from siyu.channels.schemas import (
    ChannelCostTotal,
    ChannelIn,
    ChannelOut,
    ChannelUpdate,
    CostIn,
    CostOut,
    StoreIn,
    StoreOut,
)
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api", tags=["channels"])


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(
    session: DbSession, actor: Actor = require(Permission.READ), include_archived: bool = False
) -> list[ChannelOut]:
    channels = service.list_channels(
        session, workspace_id=actor.workspace_id, include_archived=include_archived
    )
    return [ChannelOut.model_validate(c) for c in channels]


@router.post("/channels", response_model=ChannelOut, status_code=201)
def create_channel(
    body: ChannelIn, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> ChannelOut:
    channel = service.create_channel(
        session,
        workspace_id=actor.workspace_id,
        key=body.key,
        name=body.name,
        source_type=body.source_type,
        aliases=body.aliases,
        actor_user_id=actor.user_id,
    )
    return ChannelOut.model_validate(channel)


@router.get("/channels/{channel_id}", response_model=ChannelOut)
def get_channel(channel_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> ChannelOut:
    return ChannelOut.model_validate(
        service.get_channel(session, workspace_id=actor.workspace_id, channel_id=channel_id)
    )


@router.patch("/channels/{channel_id}", response_model=ChannelOut)
def update_channel(
    channel_id: int, body: ChannelUpdate, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> ChannelOut:
    channel = service.update_channel(
        session,
        workspace_id=actor.workspace_id,
        channel_id=channel_id,
        name=body.name,
        source_type=body.source_type,
        aliases=body.aliases,
        actor_user_id=actor.user_id,
    )
    return ChannelOut.model_validate(channel)


@router.post("/channels/{channel_id}/archive", response_model=ChannelOut)
def archive_channel(
    channel_id: int, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> ChannelOut:
    channel = service.archive_channel(
        session, workspace_id=actor.workspace_id, channel_id=channel_id, actor_user_id=actor.user_id
    )
    return ChannelOut.model_validate(channel)


@router.get("/channels/{channel_id}/costs", response_model=list[CostOut])
def list_costs(channel_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> list[CostOut]:
    service.get_channel(session, workspace_id=actor.workspace_id, channel_id=channel_id)
    costs = service.list_costs(session, workspace_id=actor.workspace_id, channel_id=channel_id)
    return [CostOut.model_validate(c) for c in costs]


@router.post("/channels/{channel_id}/costs", response_model=CostOut, status_code=201)
def add_cost(
    channel_id: int, body: CostIn, session: DbSession, actor: Actor = require(Permission.MANAGE)
) -> CostOut:
    cost = service.add_cost(
        session,
        workspace_id=actor.workspace_id,
        channel_id=channel_id,
        period_start=body.period_start,
        period_end=body.period_end,
        amount_cents=body.amount_cents,
        currency=body.currency,
        note=body.note,
        actor_user_id=actor.user_id,
    )
    return CostOut.model_validate(cost)


@router.delete("/costs/{cost_id}", status_code=204)
def delete_cost(cost_id: int, session: DbSession, actor: Actor = require(Permission.MANAGE)) -> Response:
    service.delete_cost(
        session, workspace_id=actor.workspace_id, cost_id=cost_id, actor_user_id=actor.user_id
    )
    return Response(status_code=204)


@router.get("/costs/by-channel", response_model=list[ChannelCostTotal])
def cost_by_channel(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    start: date = Query(description="First day, inclusive."),
    end: date = Query(description="Last day, inclusive."),
) -> list[ChannelCostTotal]:
    return service.cost_by_channel(session, workspace_id=actor.workspace_id, start=start, end=end)


@router.get("/stores", response_model=list[StoreOut])
def list_stores(session: DbSession, actor: Actor = require(Permission.READ)) -> list[StoreOut]:
    return [StoreOut.model_validate(s) for s in service.list_stores(session, workspace_id=actor.workspace_id)]


@router.post("/stores", response_model=StoreOut, status_code=201)
def create_store(body: StoreIn, session: DbSession, actor: Actor = require(Permission.MANAGE)) -> StoreOut:
    store = service.create_store(
        session, workspace_id=actor.workspace_id, actor_user_id=actor.user_id, **body.model_dump()
    )
    return StoreOut.model_validate(store)


@router.get("/stores/{store_id}", response_model=StoreOut)
def get_store(store_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> StoreOut:
    return StoreOut.model_validate(
        service.get_store(session, workspace_id=actor.workspace_id, store_id=store_id)
    )
