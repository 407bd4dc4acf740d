"""Coupon verbs: define templates, issue coupons (idempotent, within the caps), redeem them on orders
(idempotent per coupon and order), reverse a redemption when its order is refunded, and report.

`issue` is the interface journeys, broadcasts, referral rewards and tier upgrades call; `redeem` is
called by the API (staff, a shop's checkout). Refunds arrive as `order.refunded` domain events, read
from the outbox by id with a cursor (`apply_order_events`). Every write lands in the caller's
transaction with its audit row and domain event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, case, cast, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.auth.models import Role
from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEvent, DomainEventType
from siyu.core.errors import Conflict, NotFound, SiyuError, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons.models import (
    Coupon,
    CouponEventCursor,
    CouponRedemption,
    CouponStatus,
    CouponTemplate,
    CouponType,
    IssueSource,
    TemplateStatus,
)
from siyu.coupons.rules import ThresholdNotMet, benefit_of
from siyu.coupons.schemas import (
    Benefit,
    CouponOut,
    PublicCheckOut,
    RedemptionOut,
    TemplateIn,
    TemplateReport,
)
from siyu.customers import service as customers

# 31 letters and digits without 0/O, 1/I/L: read aloud or typed from a screen without confusion.
# 16 of them are 31**16 ≈ 7e23 codes (79 bits): a guess that hits any issued code is astronomically
# unlikely even with millions issued, and the public check is rate-limited on top.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 16
_CODE_CHARS = frozenset(CODE_ALPHABET)


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


def new_code() -> str:
    """A fresh coupon code from the operating system's cryptographic generator."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str | None:
    """The code as stored (upper case, spaces and dashes dropped), or None if it cannot be one."""
    cleaned = "".join(code.split()).replace("-", "").upper()
    if len(cleaned) != CODE_LENGTH or not set(cleaned) <= _CODE_CHARS:
        return None
    return cleaned


# --- templates --------------------------------------------------------------------------------------


def _check_template(body: TemplateIn) -> None:
    kind = body.type
    if not body.name.strip():
        raise ValidationFailed("the template needs a name", where="name", hint="e.g. 满300减50")
    if kind in (CouponType.AMOUNT_OFF, CouponType.NO_THRESHOLD) and body.discount_cents <= 0:
        raise ValidationFailed(
            f"a {kind.value} coupon needs the amount it takes off",
            where="discount_cents",
            hint="e.g. 5000 for ¥50",
        )
    if kind is CouponType.AMOUNT_OFF and body.threshold_cents <= 0:
        raise ValidationFailed(
            "a 满减 coupon needs its threshold",
            where="threshold_cents",
            hint="e.g. 30000 for 满300; a coupon without one is 无门槛 (no_threshold)",
        )
    if kind is CouponType.AMOUNT_OFF and body.discount_cents > body.threshold_cents:
        raise ValidationFailed(
            "the discount is larger than the threshold",
            where="discount_cents",
            hint="满300减50: 30000 / 5000",
        )
    if kind is CouponType.NO_THRESHOLD and body.threshold_cents:
        raise ValidationFailed("a 无门槛 coupon has no threshold", where="threshold_cents", hint="leave it 0")
    if kind is CouponType.PERCENT_OFF and not 1 <= body.percent_off <= 99:
        raise ValidationFailed(
            f"percent_off {body.percent_off} is not between 1 and 99",
            where="percent_off",
            hint="20 takes 20% off (八折)",
        )
    if kind in (CouponType.GIFT, CouponType.ADD_ON):
        if not (body.item_sku or "").strip() or not (body.item_name or "").strip():
            raise ValidationFailed(
                f"a {kind.value} coupon needs its item", where="item_sku", hint="give item_sku and item_name"
            )
        if body.item_price_cents <= 0:
            raise ValidationFailed("give the item's list price", where="item_price_cents")
    if kind is CouponType.ADD_ON and body.add_on_price_cents >= body.item_price_cents:
        raise ValidationFailed(
            "the add-on price is not below the item's list price",
            where="add_on_price_cents",
            hint="加价购: e.g. a ¥39 item for ¥9.9",
        )
    fixed = body.valid_from is not None or body.valid_until is not None
    if fixed == (body.valid_days is not None):
        raise ValidationFailed(
            "give either fixed dates (valid_from and valid_until) or valid_days",
            where="valid_days",
            hint="e.g. valid_days 30: each coupon is valid 30 days after it is issued",
        )
    if fixed:
        if body.valid_from is None or body.valid_until is None:
            raise ValidationFailed(
                "fixed validity needs both valid_from and valid_until", where="valid_until"
            )
        for name, value in (("valid_from", body.valid_from), ("valid_until", body.valid_until)):
            if value.tzinfo is None:
                raise ValidationFailed(
                    f"{name} needs an offset", where=name, hint="e.g. 2026-12-01T00:00:00+08:00"
                )
        if body.valid_until <= body.valid_from:
            raise ValidationFailed("valid_until is not after valid_from", where="valid_until")


def create_template(session: Session, *, actor: Actor, body: TemplateIn) -> CouponTemplate:
    """A new coupon template (the campaign); its name must not name another template of the workspace."""
    actor.require(Permission.WRITE)
    _check_template(body)
    name = " ".join(body.name.split())
    taken = session.scalar(
        select(CouponTemplate.id).where(
            CouponTemplate.workspace_id == actor.workspace_id, CouponTemplate.name == name
        )
    )
    if taken is not None:
        raise Conflict(f"a coupon template {name!r} exists already", where="name", hint="pick another name")
    values = body.model_dump()
    values.update(
        name=name,
        type=body.type.value,
        currency=body.currency.upper(),
        item_sku=(body.item_sku or "").strip() or None,
        item_name=(body.item_name or "").strip() or None,
    )
    template = CouponTemplate(
        workspace_id=actor.workspace_id,
        status=TemplateStatus.ACTIVE,
        issued_count=0,
        created_at=utcnow(),
        **values,
    )
    session.add(template)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="coupon_template.created",
        target_type="coupon_template",
        target_id=template.id,
        detail={"name": name, "type": body.type.value},
    )
    return template


def get_template(session: Session, *, workspace_id: int, template_id: int) -> CouponTemplate:
    template = session.get(CouponTemplate, template_id)
    if template is None or template.workspace_id != workspace_id:
        raise NotFound(f"coupon template {template_id} does not exist in this workspace", where="template_id")
    return template


def list_templates(session: Session, *, workspace_id: int) -> list[CouponTemplate]:
    return list(
        session.scalars(
            select(CouponTemplate)
            .where(CouponTemplate.workspace_id == workspace_id)
            .order_by(CouponTemplate.created_at.desc(), CouponTemplate.id.desc())
        )
    )


def active_templates(session: Session, *, workspace_id: int) -> list[CouponTemplate]:
    """Templates coupons may be issued from, by name."""
    return list(
        session.scalars(
            select(CouponTemplate)
            .where(
                CouponTemplate.workspace_id == workspace_id, CouponTemplate.status == TemplateStatus.ACTIVE
            )
            .order_by(CouponTemplate.name)
        )
    )


def archive_template(session: Session, *, actor: Actor, template_id: int) -> CouponTemplate:
    """No more coupons of this template are issued; those held stay usable until they expire."""
    actor.require(Permission.WRITE)
    template = get_template(session, workspace_id=actor.workspace_id, template_id=template_id)
    if template.status != TemplateStatus.ARCHIVED:
        template.status = TemplateStatus.ARCHIVED
        audit.record(
            session,
            workspace_id=actor.workspace_id,
            actor_user_id=actor.user_id,
            action="coupon_template.archived",
            target_type="coupon_template",
            target_id=template.id,
        )
    return template


# --- issuing ----------------------------------------------------------------------------------------


def _locked_template(session: Session, *, workspace_id: int, template_id: int) -> CouponTemplate:
    """The template row, locked until commit on PostgreSQL so that caps hold under concurrent issues
    (SQLite serializes writers already: every write transaction begins IMMEDIATE)."""
    stmt = select(CouponTemplate).where(
        CouponTemplate.id == template_id, CouponTemplate.workspace_id == workspace_id
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    template = session.scalars(stmt.execution_options(populate_existing=True)).first()
    if template is None:
        raise NotFound(f"coupon template {template_id} does not exist in this workspace", where="template_id")
    return template


def _existing_issue(session: Session, *, workspace_id: int, template_id: int, key: str) -> Coupon | None:
    return session.scalar(
        select(Coupon).where(
            Coupon.workspace_id == workspace_id,
            Coupon.template_id == template_id,
            Coupon.idempotency_key == key,
        )
    )


def _same_issue(found: Coupon, customer_id: int, key: str) -> Coupon:
    if found.customer_id != customer_id:
        raise Conflict(
            f"idempotency key {key!r} issued this template's coupon to another customer",
            where="idempotency_key",
            hint="use one key per customer, e.g. broadcast-12:customer-345",
        )
    return found


def _ensure_customer(session: Session, *, workspace_id: int, customer_id: int) -> None:
    live = customers.live_customer_ids(workspace_id).subquery()
    found = session.scalar(select(live.c[0]).where(live.c[0] == customer_id))
    if found is None:
        raise NotFound(f"customer {customer_id} does not exist in this workspace", where="customer_id")


def issue(
    session: Session,
    *,
    workspace_id: int,
    template_id: int,
    customer_id: int,
    source_kind: IssueSource | str,
    source_ref: str | None,
    idempotency_key: str,
    actor_user_id: int | None = None,
    at: datetime | None = None,
) -> Coupon:
    """Issue one coupon of a template to a customer, or return the coupon an earlier call with the same
    (template, idempotency_key) issued: a retry never issues twice. Refuses (Conflict) past the template's
    total or per-customer cap, or when the template is archived. For system callers (journeys,
    broadcasts, referral rewards, tier upgrades), which check the customer belongs to the workspace."""
    try:
        source = IssueSource(source_kind)
    except ValueError:
        raise ValidationFailed(
            f"unknown issue source {source_kind!r}",
            where="source_kind",
            hint="one of " + ", ".join(s.value for s in IssueSource),
        ) from None
    key = (idempotency_key or "").strip()
    if not key or len(key) > 100:
        raise ValidationFailed(
            "an issue needs an idempotency key of 1 to 100 characters", where="idempotency_key"
        )
    found = _existing_issue(session, workspace_id=workspace_id, template_id=template_id, key=key)
    if found is not None:
        return _same_issue(found, customer_id, key)
    template = _locked_template(session, workspace_id=workspace_id, template_id=template_id)
    # a concurrent issue with the same key may have committed while this one waited for the lock
    found = _existing_issue(session, workspace_id=workspace_id, template_id=template_id, key=key)
    if found is not None:
        return _same_issue(found, customer_id, key)
    if template.status != TemplateStatus.ACTIVE:
        raise Conflict(f"coupon template {template.name!r} is archived", where="template_id")
    _ensure_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    if template.total_cap is not None and template.issued_count >= template.total_cap:
        raise Conflict(
            f"coupon template {template.name!r} has issued all {template.total_cap} of its coupons",
            where="template_id",
            hint="raise the total cap or use another template",
        )
    held = session.scalar(
        select(func.count(Coupon.id)).where(
            Coupon.template_id == template.id, Coupon.customer_id == customer_id
        )
    )
    if int(held or 0) >= template.per_customer_cap:
        raise Conflict(
            f"customer {customer_id} holds {held} coupon(s) of {template.name!r} already, the most one customer may",
            where="customer_id",
            details={"per_customer_cap": template.per_customer_cap},
        )
    now = at or utcnow()
    if template.valid_days is not None:
        valid_from, expires_at = now, now + timedelta(days=template.valid_days)
    else:
        assert template.valid_from is not None and template.valid_until is not None
        valid_from, expires_at = template.valid_from, template.valid_until
    coupon = None
    for _attempt in range(5):
        candidate = Coupon(
            workspace_id=workspace_id,
            template_id=template.id,
            customer_id=customer_id,
            code=new_code(),
            status=CouponStatus.ISSUED,
            issued_at=now,
            valid_from=valid_from,
            expires_at=expires_at,
            source_kind=source.value,
            source_ref=(source_ref or None) and source_ref[:100],
            idempotency_key=key,
            issued_by_user_id=actor_user_id,
        )
        try:
            with session.begin_nested():
                session.add(candidate)
                session.flush()
        except IntegrityError:
            # the same key committed meanwhile (no lock on SQLite readers), or — astronomically rarely —
            # the same code: the first is the answer, the second is tried again
            found = _existing_issue(session, workspace_id=workspace_id, template_id=template_id, key=key)
            if found is not None:
                return _same_issue(found, customer_id, key)
            continue
        coupon = candidate
        break
    if coupon is None:
        raise Conflict("could not draw a free coupon code", hint="try again")
    template.issued_count += 1
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="coupon.issued",
        target_type="coupon",
        target_id=coupon.id,
        detail={"template_id": template.id, "source_kind": source.value, "source_ref": source_ref},
    )
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type=DomainEventType.COUPON_ISSUED,
        customer_id=customer_id,
        payload={"coupon_id": coupon.id, "template_id": template.id, "source_kind": source.value},
        occurred_at=now,
    )
    return coupon


def issue_by_actor(
    session: Session,
    *,
    actor: Actor,
    template_id: int,
    customer_id: int,
    idempotency_key: str,
    source_kind: IssueSource | str = IssueSource.STAFF,
    source_ref: str | None = None,
) -> Coupon:
    """A member (staff, or an API client with a token) issues a coupon to a customer they may see."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    get_template(session, workspace_id=actor.workspace_id, template_id=template_id)
    return issue(
        session,
        workspace_id=actor.workspace_id,
        template_id=template_id,
        customer_id=customer_id,
        source_kind=source_kind,
        source_ref=source_ref,
        idempotency_key=idempotency_key,
        actor_user_id=actor.user_id,
    )


def revoke(session: Session, *, actor: Actor, coupon_id: int, reason: str = "") -> Coupon:
    """Take back an unused coupon; a used one cannot be revoked (refund its order instead)."""
    actor.require(Permission.WRITE)
    coupon = _locked_coupon_by_id(session, workspace_id=actor.workspace_id, coupon_id=coupon_id)
    customers.ensure_visible(session, actor=actor, customer_id=coupon.customer_id)
    if coupon.status == CouponStatus.REVOKED:
        return coupon
    if coupon.status == CouponStatus.REDEEMED:
        raise Conflict("a used coupon cannot be revoked", where="coupon_id", hint="refund its order instead")
    coupon.status = CouponStatus.REVOKED
    coupon.revoked_at = utcnow()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="coupon.revoked",
        target_type="coupon",
        target_id=coupon.id,
        detail={"reason": reason[:200]},
    )
    return coupon


# --- reading coupons --------------------------------------------------------------------------------


def effective_status(coupon: Coupon, now: datetime | None = None) -> CouponStatus:
    """The stored status, with an issued coupon past its expiry shown as expired."""
    status = CouponStatus(coupon.status)
    if status is CouponStatus.ISSUED and coupon.expires_at <= (now or utcnow()):
        return CouponStatus.EXPIRED
    return status


def _coupon_out(coupon: Coupon, template: CouponTemplate, now: datetime) -> CouponOut:
    return CouponOut(
        id=coupon.id,
        template_id=template.id,
        template_name=template.name,
        type=CouponType(template.type),
        customer_id=coupon.customer_id,
        code=coupon.code,
        status=effective_status(coupon, now).value,
        issued_at=coupon.issued_at,
        valid_from=coupon.valid_from,
        expires_at=coupon.expires_at,
        source_kind=coupon.source_kind,
        source_ref=coupon.source_ref,
        redeemed_at=coupon.redeemed_at,
    )


def coupon_out(session: Session, coupon: Coupon) -> CouponOut:
    template = session.get(CouponTemplate, coupon.template_id)
    assert template is not None
    return _coupon_out(coupon, template, utcnow())


def coupons_of_customer(session: Session, *, workspace_id: int, customer_id: int) -> list[CouponOut]:
    """The coupons a customer holds or held, newest first; the caller has checked they may be seen."""
    now = utcnow()
    rows = session.execute(
        select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.workspace_id == workspace_id, Coupon.customer_id == customer_id)
        .order_by(Coupon.issued_at.desc(), Coupon.id.desc())
        .limit(200)
    )
    return [_coupon_out(coupon, template, now) for coupon, template in rows]


def customer_coupons(session: Session, *, actor: Actor, customer_id: int) -> list[CouponOut]:
    actor.require(Permission.READ)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return coupons_of_customer(session, workspace_id=actor.workspace_id, customer_id=customer_id)


# --- redeeming --------------------------------------------------------------------------------------


def _locked_coupon_by_id(session: Session, *, workspace_id: int, coupon_id: int) -> Coupon:
    stmt = select(Coupon).where(Coupon.id == coupon_id, Coupon.workspace_id == workspace_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    coupon = session.scalars(stmt.execution_options(populate_existing=True)).first()
    if coupon is None:
        raise NotFound(f"coupon {coupon_id} does not exist in this workspace", where="coupon_id")
    return coupon


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


# --- refunds ----------------------------------------------------------------------------------------


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


# --- reports ----------------------------------------------------------------------------------------


def reports(session: Session, *, workspace_id: int, template_id: int | None = None) -> list[TemplateReport]:
    """Per template, in SQL: coupons issued, redeemed (standing redemptions), redemption rate, attributed
    GMV (what the redeeming orders paid: amount less discount), cost (benefits given plus the
    per-redemption cost) and ROI = (GMV − cost) / cost."""
    issued = (
        select(Coupon.template_id.label("template_id"), func.count(Coupon.id).label("issued"))
        .where(Coupon.workspace_id == workspace_id)
        .group_by(Coupon.template_id)
        .subquery()
    )
    used = (
        select(
            CouponRedemption.template_id.label("template_id"),
            func.count(CouponRedemption.id).label("redeemed"),
            func.sum(CouponRedemption.order_amount_cents - CouponRedemption.discount_cents).label("gmv"),
            func.sum(CouponRedemption.benefit_cents).label("benefits"),
        )
        .where(CouponRedemption.workspace_id == workspace_id, CouponRedemption.reversed_at.is_(None))
        .group_by(CouponRedemption.template_id)
        .subquery()
    )
    n_issued = func.coalesce(issued.c.issued, 0)
    n_redeemed = func.coalesce(used.c.redeemed, 0)
    gmv = func.coalesce(used.c.gmv, 0)
    cost = func.coalesce(used.c.benefits, 0) + n_redeemed * CouponTemplate.cost_per_redemption_cents
    stmt = (
        select(
            CouponTemplate.id,
            CouponTemplate.name,
            CouponTemplate.type,
            n_issued.label("issued"),
            n_redeemed.label("redeemed"),
            case((n_issued > 0, cast(n_redeemed, Float) / n_issued), else_=None).label("rate"),
            gmv.label("gmv"),
            cost.label("cost"),
            case((cost > 0, cast(gmv - cost, Float) / cost), else_=None).label("roi"),
        )
        .outerjoin(issued, issued.c.template_id == CouponTemplate.id)
        .outerjoin(used, used.c.template_id == CouponTemplate.id)
        .where(CouponTemplate.workspace_id == workspace_id)
        .order_by(CouponTemplate.created_at.desc(), CouponTemplate.id.desc())
    )
    if template_id is not None:
        stmt = stmt.where(CouponTemplate.id == template_id)
    return [
        TemplateReport(
            template_id=row.id,
            name=row.name,
            type=CouponType(row.type),
            issued=int(row.issued),
            redeemed=int(row.redeemed),
            redemption_rate=None if row.rate is None else float(row.rate),
            attributed_gmv_cents=int(row.gmv),
            cost_cents=int(row.cost),
            roi=None if row.roi is None else float(row.roi),
        )
        for row in session.execute(stmt)
    ]
