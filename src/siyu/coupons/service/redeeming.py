"""Redeeming a coupon on an order (idempotent per coupon and order) with typed refusals, the
redemptions an order import asks for, and the public check of a code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.models import Role
from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import SiyuError, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons.models import (
    Coupon,
    CouponRedemption,
    CouponStatus,
    CouponTemplate,
    CouponType,
)
from siyu.coupons.rules import ThresholdNotMet, benefit_of
from siyu.coupons.schemas import (
    Benefit,
    PublicCheckOut,
    RedemptionOut,
)
from siyu.coupons.service.issuing import effective_status
from siyu.coupons.service.templates import normalize_code
from siyu.customers import service as customers


@dataclass
class CouponRefused(SiyuError):
    """A coupon that cannot be used on this order; `reason` says why (a code for clients)."""

    status_code: int = 409
    reason: str = "refused"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "reason": self.reason}


@dataclass
class RateLimited(SiyuError):
    """Too many attempts from one client (or for one phone) in a window."""

    status_code: int = 429


def _refuse(reason: str, message: str, hint: str | None = None) -> CouponRefused:
    return CouponRefused(message, where="code", hint=hint, reason=reason)


NOT_FOUND_MESSAGE = "no usable coupon has this code for this customer"
NOT_FOUND_HINT = "check the code, and that it belongs to this customer"


def _coupon_by_code(session: Session, *, workspace_id: int, code: str, lock: bool) -> Coupon | None:
    normal = normalize_code(code)
    if normal is None:
        return None
    stmt = select(Coupon).where(Coupon.workspace_id == workspace_id, Coupon.code == normal)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


def _redemption_out(redemption: CouponRedemption, benefit: Benefit) -> RedemptionOut:
    return RedemptionOut(
        id=redemption.id,
        coupon_id=redemption.coupon_id,
        template_id=redemption.template_id,
        customer_id=redemption.customer_id,
        order_ref=redemption.order_ref,
        order_amount_cents=redemption.order_amount_cents,
        discount_cents=redemption.discount_cents,
        benefit=benefit,
        redeemed_at=redemption.redeemed_at,
        reversed_at=redemption.reversed_at,
    )


def _usable_benefit(
    coupon: Coupon | None,
    template: CouponTemplate | None,
    *,
    customer_id: int,
    amount_cents: int,
    now: datetime,
) -> Benefit:
    """The coupon's benefit on this order, or CouponRefused saying why not. A code that names nobody's
    coupon and a coupon of another customer get the same refusal: a caller learns nothing about codes
    that are not theirs."""
    if coupon is None or template is None or coupon.customer_id != customer_id:
        raise _refuse("not_found", NOT_FOUND_MESSAGE, NOT_FOUND_HINT)
    status = effective_status(coupon, now)
    if status is CouponStatus.REVOKED:
        raise _refuse("revoked", "this coupon was revoked")
    if status is CouponStatus.REDEEMED:
        raise _refuse("used", "this coupon has been used already", "a coupon is used once")
    if status is CouponStatus.EXPIRED:
        raise _refuse("expired", f"this coupon expired at {coupon.expires_at.isoformat()}")
    if now < coupon.valid_from:
        raise _refuse("not_yet_valid", f"this coupon is valid from {coupon.valid_from.isoformat()}")
    try:
        return benefit_of(template, amount_cents)
    except ThresholdNotMet as short:
        raise _refuse(
            "threshold_not_met",
            f"the order of {short.amount_cents / 100:.2f} is below this coupon's threshold of "
            f"{short.threshold_cents / 100:.2f}",
            f"add {(short.threshold_cents - short.amount_cents) / 100:.2f} more",
        ) from None


def _stored_benefit(template: CouponTemplate, redemption: CouponRedemption) -> Benefit:
    kind = CouponType(template.type)
    if kind in (CouponType.GIFT, CouponType.ADD_ON):
        return Benefit(
            discount_cents=redemption.discount_cents,
            item_sku=template.item_sku,
            item_name=template.item_name,
            item_price_cents=0 if kind is CouponType.GIFT else template.add_on_price_cents,
            benefit_cents=redemption.benefit_cents,
        )
    return Benefit(discount_cents=redemption.discount_cents, benefit_cents=redemption.benefit_cents)


def redeem(
    session: Session,
    *,
    workspace_id: int,
    code: str,
    customer_id: int,
    order_ref: str,
    amount_cents: int,
    lines: list[dict[str, Any]] | None = None,
    actor_user_id: int | None = None,
    at: datetime | None = None,
) -> RedemptionOut:
    """Use a customer's coupon on an order: the benefit it gives, recorded once. A retry with the same
    code and order_ref returns the first redemption; any other use is refused with CouponRefused
    (not_found — also for another customer's code —, revoked, used, expired, not_yet_valid,
    threshold_not_met). `lines` (sku, quantity, amount_cents) may give the amount instead."""
    order_ref = (order_ref or "").strip()
    if not order_ref or len(order_ref) > 100:
        raise ValidationFailed("give the order's external id (1 to 100 characters)", where="order_ref")
    if lines:
        amount_cents = sum(int(line["amount_cents"]) for line in lines)
    if amount_cents < 0:
        raise ValidationFailed("the order amount is negative", where="amount_cents")
    coupon = _coupon_by_code(session, workspace_id=workspace_id, code=code, lock=True)
    template = session.get(CouponTemplate, coupon.template_id) if coupon is not None else None
    if coupon is not None and template is not None and coupon.customer_id == customer_id:
        done = session.scalar(
            select(CouponRedemption).where(
                CouponRedemption.coupon_id == coupon.id,
                CouponRedemption.order_ref == order_ref,
                CouponRedemption.reversed_at.is_(None),
            )
        )
        if done is not None:
            return _redemption_out(done, _stored_benefit(template, done))
    now = at or utcnow()
    benefit = _usable_benefit(coupon, template, customer_id=customer_id, amount_cents=amount_cents, now=now)
    assert coupon is not None and template is not None
    # a reversed redemption of this same order is used again rather than a second row: (coupon,
    # order_ref) stays unique, so concurrent retries end in one row
    redemption = session.scalar(
        select(CouponRedemption).where(
            CouponRedemption.coupon_id == coupon.id, CouponRedemption.order_ref == order_ref
        )
    )
    if redemption is None:
        redemption = CouponRedemption(
            workspace_id=workspace_id,
            coupon_id=coupon.id,
            template_id=template.id,
            customer_id=customer_id,
            order_ref=order_ref,
        )
        session.add(redemption)
    redemption.order_amount_cents = amount_cents
    redemption.discount_cents = benefit.discount_cents
    redemption.benefit_cents = benefit.benefit_cents
    redemption.redeemed_at = now
    redemption.reversed_at = None
    redemption.reversal_reason = None
    coupon.status = CouponStatus.REDEEMED
    coupon.redeemed_at = now
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="coupon.redeemed",
        target_type="coupon",
        target_id=coupon.id,
        detail={"order_ref": order_ref, "discount_cents": benefit.discount_cents},
    )
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type=DomainEventType.COUPON_REDEEMED,
        customer_id=customer_id,
        payload={
            "coupon_id": coupon.id,
            "template_id": template.id,
            "order_ref": order_ref,
            "discount_cents": benefit.discount_cents,
        },
        occurred_at=now,
    )
    return _redemption_out(redemption, benefit)


def redeem_by_actor(
    session: Session,
    *,
    actor: Actor,
    code: str,
    customer_id: int,
    order_ref: str,
    amount_cents: int,
    lines: list[dict[str, Any]] | None = None,
) -> RedemptionOut:
    """A member redeems a coupon of a customer they may see (a shop's checkout, staff)."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return redeem(
        session,
        workspace_id=actor.workspace_id,
        code=code,
        customer_id=customer_id,
        order_ref=order_ref,
        amount_cents=amount_cents,
        lines=lines,
        actor_user_id=actor.user_id,
    )


def redeem_for_orders(
    session: Session, *, workspace_id: int, rows: list[tuple[int, str, int, str, int]]
) -> list[tuple[int, str, str]]:
    """Redeem coupons named by imported orders: rows of (row number, order external id, customer id,
    code, amount before discounts). Returns the refused ones as (row number, code, why); each refusal
    leaves nothing written."""
    refused: list[tuple[int, str, str]] = []
    for row_number, order_ref, customer_id, code, amount_cents in rows:
        try:
            with session.begin_nested():
                redeem(
                    session,
                    workspace_id=workspace_id,
                    code=code,
                    customer_id=customer_id,
                    order_ref=order_ref,
                    amount_cents=amount_cents,
                )
        except SiyuError as error:
            refused.append((row_number, code, error.message))
    return refused


def check(
    session: Session, *, workspace_id: int, code: str, customer_id: int | None, amount_cents: int
) -> PublicCheckOut:
    """What a code would give this customer on an order, writing nothing (the public check)."""
    now = utcnow()
    coupon = _coupon_by_code(session, workspace_id=workspace_id, code=code, lock=False)
    template = session.get(CouponTemplate, coupon.template_id) if coupon is not None else None
    try:
        benefit = _usable_benefit(
            coupon,
            template,
            customer_id=-1 if customer_id is None else customer_id,
            amount_cents=amount_cents,
            now=now,
        )
    except CouponRefused as refused:
        return PublicCheckOut(usable=False, reason=refused.reason, message=refused.message)
    return PublicCheckOut(usable=True, benefit=benefit)


def public_check(
    session: Session, *, workspace_id: int, code: str, phone: str, amount_cents: int
) -> PublicCheckOut:
    """The public check by the customer's phone: an unknown phone, an unknown code and another
    customer's code all answer `not_found` alike."""
    # the lookup of a customer by phone across the workspace, as the system (not a member) does it
    system = Actor(user_id=0, workspace_id=workspace_id, role=Role.ADMIN, via="public")
    resolved, _missing = customers.customer_ids_by_identity(
        session, actor=system, kind="phone", values=[phone]
    )
    return check(
        session,
        workspace_id=workspace_id,
        code=code,
        customer_id=next(iter(resolved.values()), None),
        amount_cents=amount_cents,
    )
