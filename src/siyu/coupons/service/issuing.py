"""Issuing coupons within a template's caps, idempotent per key; revoking; reading a customer's coupons."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons.models import (
    Coupon,
    CouponStatus,
    CouponTemplate,
    CouponType,
    IssueSource,
    TemplateStatus,
)
from siyu.coupons.schemas import (
    CouponOut,
)
from siyu.coupons.service.templates import get_template, new_code
from siyu.customers import service as customers


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


def _locked_coupon_by_id(session: Session, *, workspace_id: int, coupon_id: int) -> Coupon:
    stmt = select(Coupon).where(Coupon.id == coupon_id, Coupon.workspace_id == workspace_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    coupon = session.scalars(stmt.execution_options(populate_existing=True)).first()
    if coupon is None:
        raise NotFound(f"coupon {coupon_id} does not exist in this workspace", where="coupon_id")
    return coupon


def usable_codes(
    session: Session, *, workspace_id: int, customer_ids: Iterable[int], now: datetime | None = None
) -> dict[int, list[dict[str, str]]]:
    """The usable coupons (issued, in validity, not redeemed or revoked) of the given customers, newest
    first, as message templates show them: code, template name, expiry (ISO). One query per thousand."""
    now = now or utcnow()
    ids = sorted(set(customer_ids))
    found: dict[int, list[dict[str, str]]] = {}
    for start in range(0, len(ids), 1000):
        for customer_id, code, name, expires_at in session.execute(
            select(Coupon.customer_id, Coupon.code, CouponTemplate.name, Coupon.expires_at)
            .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
            .where(
                Coupon.workspace_id == workspace_id,
                Coupon.customer_id.in_(ids[start : start + 1000]),
                Coupon.status == CouponStatus.ISSUED,
                Coupon.valid_from <= now,
                Coupon.expires_at > now,
            )
            .order_by(Coupon.issued_at.desc(), Coupon.id.desc())
        ):
            found.setdefault(customer_id, []).append(
                {"code": code, "template": name, "expires_at": expires_at.isoformat()}
            )
    return found


def expiring(
    session: Session, *, workspace_id: int, start: datetime, end: datetime, template_id: int | None = None
) -> list[tuple[int, int, datetime]]:
    """Unused coupons that expire in [start, end): (customer id, coupon id, expires at), for reminders
    (a journey's coupon-expiring trigger)."""
    query = select(Coupon.customer_id, Coupon.id, Coupon.expires_at).where(
        Coupon.workspace_id == workspace_id,
        Coupon.status == CouponStatus.ISSUED,
        Coupon.expires_at >= start,
        Coupon.expires_at < end,
    )
    if template_id is not None:
        query = query.where(Coupon.template_id == template_id)
    return [(int(c), int(i), e) for c, i, e in session.execute(query.order_by(Coupon.id))]
