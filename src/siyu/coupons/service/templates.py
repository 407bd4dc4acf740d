"""Coupon templates (the campaign and its rule) and the codes coupons carry."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons.models import (
    CouponTemplate,
    CouponType,
    TemplateStatus,
)
from siyu.coupons.schemas import (
    TemplateIn,
)

# 31 letters and digits without 0/O, 1/I/L: read aloud or typed from a screen without confusion.
# 16 of them are 31**16 ≈ 7e23 codes (79 bits): a guess that hits any issued code is astronomically
# unlikely even with millions issued, and the public check is rate-limited on top.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 16
_CODE_CHARS = frozenset(CODE_ALPHABET)


def new_code() -> str:
    """A fresh coupon code from the operating system's cryptographic generator."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str | None:
    """The code as stored (upper case, spaces and dashes dropped), or None if it cannot be one."""
    cleaned = "".join(code.split()).replace("-", "").upper()
    if len(cleaned) != CODE_LENGTH or not set(cleaned) <= _CODE_CHARS:
        return None
    return cleaned


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
