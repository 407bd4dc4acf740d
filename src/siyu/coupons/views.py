"""The coupons page (优惠券): every template with its figures (issued, redeemed, rate, GMV, cost, ROI)
and a form to create one. Writes redirect back (post/redirect/get); a refused form is shown again
with the reason."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core.errors import SiyuError, ValidationFailed
from siyu.coupons import service
from siyu.coupons.models import CouponType, IssueSource
from siyu.coupons.schemas import TemplateIn
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)


def _cents(text: str, *, where: str) -> int:
    """A typed amount in yuan ("300", "¥9.90") as cents; blank is 0."""
    cleaned = text.strip().replace(",", "").replace("¥", "").replace("￥", "")
    if not cleaned:
        return 0
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValidationFailed(
            f"{text!r} is not an amount", where=where, hint="yuan, e.g. 300 or 9.90"
        ) from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed(f"{text!r} is not an amount in yuan and fen", where=where, hint="e.g. 9.90")
    return int(amount * 100)


def _whole(text: str, *, where: str) -> int | None:
    cleaned = text.strip()
    if not cleaned:
        return None
    if not cleaned.isdigit() or len(cleaned) > 9:
        raise ValidationFailed(f"{text!r} is not a whole number", where=where)
    return int(cleaned)


def _page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    error: SiyuError | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    templates = {t.id: t for t in service.list_templates(session, workspace_id=actor.workspace_id)}
    return render(
        request,
        "coupons/index.html",
        {
            "templates": templates,
            "reports": service.reports(session, workspace_id=actor.workspace_id),
            "types": [t.value for t in CouponType],
            "can_write": actor.can(Permission.WRITE),
            "error": error,
            "form": form or {},
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


@router.get("/coupons")
def coupons_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return _page(request, session, actor)


@router.post("/coupons/issue")
def issue_coupon(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    customer_id: Annotated[int, Form()],
    template_id: Annotated[int, Form()],
    idempotency_key: Annotated[str, Form(max_length=100)],
) -> Response:
    """A member issues a coupon from the customer's 360 page (source: staff); the form's key makes a
    double submit issue one coupon."""
    actor.require(Permission.WRITE)
    try:
        with session.begin_nested():
            service.issue_by_actor(
                session,
                actor=actor,
                template_id=template_id,
                customer_id=customer_id,
                idempotency_key=idempotency_key,
                source_kind=IssueSource.STAFF,
                source_ref=f"user:{actor.user_id}",
            )
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/customers/{customer_id}#member-coupons", status_code=303)


@router.post("/coupons")
def create_template(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    name: Annotated[str, Form()],
    type: Annotated[str, Form()],
    threshold: Annotated[str, Form()] = "",
    discount: Annotated[str, Form()] = "",
    percent_off: Annotated[str, Form()] = "",
    cap: Annotated[str, Form()] = "",
    item_sku: Annotated[str, Form()] = "",
    item_name: Annotated[str, Form()] = "",
    item_price: Annotated[str, Form()] = "",
    add_on_price: Annotated[str, Form()] = "",
    valid_days: Annotated[str, Form()] = "30",
    total_cap: Annotated[str, Form()] = "",
    per_customer_cap: Annotated[str, Form()] = "1",
    cost_per_redemption: Annotated[str, Form()] = "",
) -> Response:
    actor.require(Permission.WRITE)
    form = {k: v for k, v in locals().items() if isinstance(v, str)}
    try:
        try:
            body = TemplateIn(
                name=name,
                type=type,  # type: ignore[arg-type]
                threshold_cents=_cents(threshold, where="threshold"),
                discount_cents=_cents(discount, where="discount"),
                percent_off=_whole(percent_off, where="percent_off") or 0,
                cap_cents=_cents(cap, where="cap") or None,
                item_sku=item_sku or None,
                item_name=item_name or None,
                item_price_cents=_cents(item_price, where="item_price"),
                add_on_price_cents=_cents(add_on_price, where="add_on_price"),
                valid_days=_whole(valid_days, where="valid_days"),
                total_cap=_whole(total_cap, where="total_cap"),
                per_customer_cap=_whole(per_customer_cap, where="per_customer_cap") or 1,
                cost_per_redemption_cents=_cents(cost_per_redemption, where="cost_per_redemption"),
            )
        except ValidationError as invalid:
            first = invalid.errors()[0]
            raise ValidationFailed(
                str(first["msg"]), where=".".join(str(p) for p in first["loc"]), hint="check this field"
            ) from None
        with session.begin_nested():  # a savepoint: a refused write leaves the page's session usable
            service.create_template(session, actor=actor, body=body)
    except SiyuError as error:
        return _page(request, session, actor, error=error, form=form, status_code=error.status_code)
    return RedirectResponse("/coupons?saved=1", status_code=303)
