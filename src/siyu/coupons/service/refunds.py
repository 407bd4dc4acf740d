"""Refunds and merges read from the outbox in commit order (the shared reader, consumer "coupons"): a
refunded order's redemptions are reversed, a merged record's coupons go to the survivor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.core import audit, domain_events
from siyu.core.domain_events import DomainEventType
from siyu.core.timeutil import utcnow
from siyu.coupons.models import (
    Coupon,
    CouponRedemption,
    CouponStatus,
)
from siyu.coupons.service.issuing import _locked_coupon_by_id

CONSUMER = "coupons"  # its place in domain_event_cursor
_EVENTS = (str(DomainEventType.ORDER_REFUNDED), str(DomainEventType.IDENTITY_MERGED))


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
    """Read the workspace's next `order.refunded` and `identity.merged` events in commit order: a fully
    refunded order reverses the redemptions made on it (a partial refund keeps them); a merge moves the
    merged record's coupons to the survivor. Returns how many events were read; call until it reads
    fewer than `batch`. Safe to run concurrently: the cursor row is locked."""
    read = domain_events.read_after(
        session, consumer=CONSUMER, workspace_id=workspace_id, limit=batch, types=_EVENTS
    )
    if read.position != read.start:
        domain_events.advance(session, consumer=CONSUMER, workspace_id=workspace_id, position=read.position)
    for event in read.events:
        payload = event.payload or {}
        if event.type == str(DomainEventType.IDENTITY_MERGED):
            if event.customer_id is not None and payload.get("merged_id"):
                _move_coupons(
                    session,
                    workspace_id=workspace_id,
                    from_id=int(payload["merged_id"]),
                    to_id=event.customer_id,
                )
        elif payload.get("status") == "refunded" and payload.get("external_id"):
            reverse_redemptions(session, workspace_id=workspace_id, order_ref=str(payload["external_id"]))
    return len(read.events)
