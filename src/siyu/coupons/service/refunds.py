"""Refunds and merges read from the outbox: a refunded order's redemptions are reversed, a merged
record's coupons go to the survivor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.core import audit, domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEvent, DomainEventType
from siyu.core.timeutil import utcnow
from siyu.coupons.models import (
    Coupon,
    CouponEventCursor,
    CouponRedemption,
    CouponStatus,
)
from siyu.coupons.service.issuing import _locked_coupon_by_id


def reverse_redemptions(
    session: Session,
    *,
    workspace_id: int,
    order_ref: str,
    reason: str = "order refunded",
    at: datetime | None = None,
) -> int:
    """Reverse every standing redemption made on this order: the redemption is kept, marked reversed,
    and its coupon is usable again (until it expires). Idempotent: returns how many were reversed now."""
    now = at or utcnow()
    rows = list(
        session.scalars(
            select(CouponRedemption).where(
                CouponRedemption.workspace_id == workspace_id,
                CouponRedemption.order_ref == order_ref,
                CouponRedemption.reversed_at.is_(None),
            )
        )
    )
    for redemption in rows:
        coupon = _locked_coupon_by_id(session, workspace_id=workspace_id, coupon_id=redemption.coupon_id)
        redemption.reversed_at = now
        redemption.reversal_reason = reason[:100]
        if coupon.status == CouponStatus.REDEEMED:
            coupon.status = CouponStatus.ISSUED
            coupon.redeemed_at = None
        audit.record(
            session,
            workspace_id=workspace_id,
            actor_user_id=None,
            action="coupon.redemption_reversed",
            target_type="coupon",
            target_id=coupon.id,
            detail={"order_ref": order_ref, "reason": reason[:100]},
        )
        domain_events.record(
            session,
            workspace_id=workspace_id,
            type=DomainEventType.COUPON_REDEMPTION_REVERSED,
            customer_id=redemption.customer_id,
            payload={"coupon_id": coupon.id, "order_ref": order_ref},
            occurred_at=now,
        )
    return len(rows)


def _cursor(session: Session, workspace_id: int) -> CouponEventCursor:
    values = {"workspace_id": workspace_id, "last_event_id": 0, "updated_at": utcnow()}
    insert = pg_insert if is_postgres(session) else sqlite_insert
    session.execute(insert(CouponEventCursor).values(**values).on_conflict_do_nothing())
    stmt = select(CouponEventCursor).where(CouponEventCursor.workspace_id == workspace_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def _move_coupons(session: Session, *, workspace_id: int, from_id: int, to_id: int) -> None:
    """On a merge the merged record's coupons go to the survivor (an unmerge leaves them there)."""
    ids = list(
        session.scalars(
            select(Coupon.id).where(Coupon.workspace_id == workspace_id, Coupon.customer_id == from_id)
        )
    )
    if not ids:
        return
    session.execute(
        update(Coupon)
        .where(Coupon.id.in_(ids))
        .values(customer_id=to_id)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=None,
        action="coupon.moved_on_merge",
        target_type="customer",
        target_id=to_id,
        detail={"from_customer_id": from_id, "coupon_ids": ids},
    )


def apply_order_events(session: Session, *, workspace_id: int, batch: int = 5000) -> int:
    """Read the workspace's `order.refunded` and `identity.merged` events after the cursor: a fully
    refunded order reverses the redemptions made on it (a partial refund keeps them); a merge moves the
    merged record's coupons to the survivor. Returns how many events were read; call until it returns
    0. Safe to run concurrently: the cursor row is locked."""
    cursor = _cursor(session, workspace_id)
    events = list(
        session.execute(
            select(DomainEvent.id, DomainEvent.type, DomainEvent.customer_id, DomainEvent.payload)
            .where(
                DomainEvent.workspace_id == workspace_id,
                DomainEvent.id > cursor.last_event_id,
                DomainEvent.type.in_(
                    (str(DomainEventType.ORDER_REFUNDED), str(DomainEventType.IDENTITY_MERGED))
                ),
            )
            .order_by(DomainEvent.id)
            .limit(batch)
        )
    )
    for _id, type_, customer_id, payload in events:
        if type_ == str(DomainEventType.IDENTITY_MERGED):
            if customer_id is not None and payload.get("merged_id"):
                _move_coupons(
                    session, workspace_id=workspace_id, from_id=int(payload["merged_id"]), to_id=customer_id
                )
        elif payload.get("status") == "refunded" and payload.get("external_id"):
            reverse_redemptions(session, workspace_id=workspace_id, order_ref=str(payload["external_id"]))
    if events:
        cursor.last_event_id = events[-1][0]
        cursor.updated_at = utcnow()
    return len(events)
