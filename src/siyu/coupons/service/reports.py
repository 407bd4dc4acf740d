"""Per-template figures in SQL: issued, redeemed, redemption rate, attributed GMV, cost, ROI."""

from __future__ import annotations

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.orm import Session

from siyu.coupons.models import (
    Coupon,
    CouponRedemption,
    CouponTemplate,
    CouponType,
)
from siyu.coupons.schemas import (
    TemplateReport,
)


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
