"""JSON routes for orders: cursor-paged lists, one order with its lines, revenue by channel over time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from siyu.auth.service import Actor, Permission
from siyu.core.errors import PermissionDenied
from siyu.orders import service
from siyu.orders.schemas import Granularity, OrderOut, OrderPage, RevenueRow
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api", tags=["orders"])


@router.get("/orders", response_model=OrderPage)
def list_orders(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    customer_id: int | None = None,
    channel_id: int | None = None,
    start: Annotated[datetime | None, Query(description="Placed at or after (UTC).")] = None,
    end: Annotated[datetime | None, Query(description="Placed before (UTC).")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OrderPage:
    return service.list_orders(
        session,
        actor=actor,
        customer_id=customer_id,
        channel_id=channel_id,
        start=start,
        end=end,
        cursor=cursor,
        limit=limit,
    )


@router.get("/orders/revenue-by-channel", response_model=list[RevenueRow])
def revenue_by_channel(
    session: DbSession,
    start: datetime,
    end: datetime,
    actor: Actor = require(Permission.READ),
    granularity: Granularity = "day",
) -> list[RevenueRow]:
    """Net revenue per channel and period (of the workspace's calendar) for orders placed in [start, end)."""
    if actor.sees_only_own_customers:
        raise PermissionDenied(
            "revenue by channel is a brand-wide figure; the staff role sees only its own customers",
            hint="ask an analyst or the owner for the overview",
        )
    return service.revenue_by_channel(
        session, workspace_id=actor.workspace_id, start=start, end=end, granularity=granularity
    )


@router.get("/orders/by-external-id/{external_id}", response_model=OrderOut)
def get_order_by_external_id(
    external_id: str, session: DbSession, actor: Actor = require(Permission.READ)
) -> OrderOut:
    return service.get_order_by_external_id(session, actor=actor, external_id=external_id)


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> OrderOut:
    return service.get_order(session, actor=actor, order_id=order_id)
