"""The rule of each coupon type: what a template gives on an order amount, or why it gives nothing.

Pure functions on integer cents; docs/coupons.md has a worked example of each.
"""

from __future__ import annotations

from siyu.coupons.models import CouponTemplate, CouponType
from siyu.coupons.schemas import Benefit


class ThresholdNotMet(Exception):
    def __init__(self, threshold_cents: int, amount_cents: int) -> None:
        super().__init__(threshold_cents, amount_cents)
        self.threshold_cents = threshold_cents
        self.amount_cents = amount_cents


def benefit_of(template: CouponTemplate, amount_cents: int) -> Benefit:
    """What the template gives on an order of `amount_cents` (before the coupon); ThresholdNotMet if the
    order is below the template's threshold (无门槛 has none)."""
    kind = CouponType(template.type)
    threshold = 0 if kind is CouponType.NO_THRESHOLD else template.threshold_cents
    if amount_cents < threshold:
        raise ThresholdNotMet(threshold, amount_cents)
    if kind in (CouponType.AMOUNT_OFF, CouponType.NO_THRESHOLD):
        # never more than the order: a ¥20 coupon on a ¥15 order takes ¥15 off
        discount = min(template.discount_cents, amount_cents)
        return Benefit(discount_cents=discount, benefit_cents=discount)
    if kind is CouponType.PERCENT_OFF:
        # rounded down to the cent, in the customer's disfavour by less than a cent, then capped
        discount = amount_cents * template.percent_off // 100
        if template.cap_cents is not None:
            discount = min(discount, template.cap_cents)
        return Benefit(discount_cents=discount, benefit_cents=discount)
    if kind is CouponType.GIFT:
        return Benefit(
            discount_cents=0,
            item_sku=template.item_sku,
            item_name=template.item_name,
            item_price_cents=0,
            benefit_cents=template.item_price_cents,
        )
    return Benefit(
        discount_cents=0,
        item_sku=template.item_sku,
        item_name=template.item_name,
        item_price_cents=template.add_on_price_cents,
        benefit_cents=max(0, template.item_price_cents - template.add_on_price_cents),
    )
