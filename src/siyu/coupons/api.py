"""JSON routes of coupons: templates and their reports, issue, redeem (members with `write`), revoke,
a customer's coupons, and the public check of a code (no login; rate-limited, no enumeration)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from siyu.auth.service import Actor, Permission
from siyu.core.errors import NotFound
from siyu.coupons import service
from siyu.coupons.schemas import (
    CouponOut,
    IssueIn,
    PublicCheckIn,
    PublicCheckOut,
    RedeemIn,
    RedemptionOut,
    TemplateIn,
    TemplateOut,
    TemplateReport,
)
from siyu.coupons.service import RateLimited
from siyu.web.deps import DbSession, rate_limits, require
from siyu.workspaces import service as workspaces

router = APIRouter(prefix="/api", tags=["coupons"])

# Per client address: a checkout retrying is fine, a script walking codes is not. Per workspace and
# phone on top: guesses spread over many addresses still meet one budget per customer.
PER_CLIENT = "20/minute"
PER_PHONE = "10/hour"


def _admit(request: Request, *keys: tuple[str, str, str]) -> None:
    for name, rate, key in keys:
        if not rate_limits(request).hit(name, rate, key).allowed:
            raise RateLimited(
                "too many coupon checks; wait a minute and try again",
                hint="a checkout should check a code once per order",
            )


@router.get("/coupon-templates", response_model=list[TemplateOut])
def list_templates(session: DbSession, actor: Actor = require(Permission.READ)) -> list[TemplateOut]:
    return [
        TemplateOut.model_validate(t)
        for t in service.list_templates(session, workspace_id=actor.workspace_id)
    ]


@router.post("/coupon-templates", response_model=TemplateOut, status_code=201)
def create_template(
    body: TemplateIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> TemplateOut:
    return TemplateOut.model_validate(service.create_template(session, actor=actor, body=body))


@router.get("/coupon-templates/{template_id}", response_model=TemplateOut)
def get_template(
    template_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> TemplateOut:
    return TemplateOut.model_validate(
        service.get_template(session, workspace_id=actor.workspace_id, template_id=template_id)
    )


@router.post("/coupon-templates/{template_id}/archive", response_model=TemplateOut)
def archive_template(
    template_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> TemplateOut:
    """No more issues of this template; coupons held stay usable until they expire."""
    return TemplateOut.model_validate(service.archive_template(session, actor=actor, template_id=template_id))


@router.get("/coupon-reports", response_model=list[TemplateReport])
def reports(session: DbSession, actor: Actor = require(Permission.READ)) -> list[TemplateReport]:
    """Per template: issued, redeemed, redemption rate, attributed GMV, cost and ROI."""
    return service.reports(session, workspace_id=actor.workspace_id)


@router.get("/coupon-templates/{template_id}/report", response_model=TemplateReport)
def report(template_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> TemplateReport:
    service.get_template(session, workspace_id=actor.workspace_id, template_id=template_id)
    [one] = service.reports(session, workspace_id=actor.workspace_id, template_id=template_id)
    return one


@router.post("/coupon-templates/{template_id}/issue", response_model=CouponOut, status_code=201)
def issue(
    template_id: int, body: IssueIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> CouponOut:
    """Issue a coupon to a customer; a retry with the same idempotency_key returns the same coupon."""
    coupon = service.issue_by_actor(
        session,
        actor=actor,
        template_id=template_id,
        customer_id=body.customer_id,
        idempotency_key=body.idempotency_key,
        source_kind=body.source_kind,
        source_ref=body.source_ref,
    )
    return service.coupon_out(session, coupon)


@router.post("/coupons/redeem", response_model=RedemptionOut)
def redeem(body: RedeemIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> RedemptionOut:
    """Use a customer's coupon on an order (a retry with the same order_ref answers the same); refusals
    are 409 with a `reason`: not_found, revoked, used, expired, not_yet_valid, threshold_not_met."""
    return service.redeem_by_actor(
        session,
        actor=actor,
        code=body.code,
        customer_id=body.customer_id,
        order_ref=body.order_ref,
        amount_cents=body.amount_cents,
        lines=[line.model_dump() for line in body.lines] if body.lines else None,
    )


@router.post("/coupons/{coupon_id}/revoke", response_model=CouponOut)
def revoke(coupon_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> CouponOut:
    return service.coupon_out(session, service.revoke(session, actor=actor, coupon_id=coupon_id))


@router.get("/customers/{customer_id}/coupons", response_model=list[CouponOut])
def customer_coupons(
    customer_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> list[CouponOut]:
    return service.customer_coupons(session, actor=actor, customer_id=customer_id)


@router.post("/public/{workspace_slug}/coupons/check", response_model=PublicCheckOut)
def public_check(
    workspace_slug: str, body: PublicCheckIn, request: Request, session: DbSession
) -> PublicCheckOut:
    """What a code would give the customer with this phone on an order of `amount_cents`; writes
    nothing. No login. An unknown workspace, phone or code, and another customer's code, all answer
    `usable: false, reason: not_found` alike; 429 past the rate limits."""
    client = request.client.host if request.client else "unknown"
    _admit(
        request,
        ("coupon_check.client", PER_CLIENT, client),
        ("coupon_check.phone", PER_PHONE, f"{workspace_slug[:64]}|{body.phone}"),
    )
    try:
        workspace = workspaces.get_workspace_by_slug(session, slug=workspace_slug[:64])
    except NotFound:
        return PublicCheckOut(usable=False, reason="not_found", message=service.NOT_FOUND_MESSAGE)
    return service.public_check(
        session, workspace_id=workspace.id, code=body.code, phone=body.phone, amount_cents=body.amount_cents
    )
