"""Coupon verbs: define templates, issue coupons (idempotent, within the caps), redeem them on orders
(idempotent per coupon and order), reverse a redemption when its order is refunded, and report.

`issue` is the interface journeys, broadcasts, referral rewards and tier upgrades call; `redeem` is
called by the API (staff, a shop's checkout) and by the order import. Refunds arrive as
`order.refunded` domain events, read from the outbox by id with a cursor (`apply_order_events`).
Every write lands in the caller's transaction with its audit row and domain event."""

from siyu.coupons.service.issuing import (
    coupon_out,
    coupons_of_customer,
    customer_coupons,
    effective_status,
    expiring,
    issue,
    issue_by_actor,
    revoke,
    usable_codes,
)
from siyu.coupons.service.redeeming import (
    NOT_FOUND_HINT,
    NOT_FOUND_MESSAGE,
    CouponRefused,
    RateLimited,
    check,
    public_check,
    redeem,
    redeem_by_actor,
    redeem_for_orders,
)
from siyu.coupons.service.refunds import apply_order_events, reverse_redemptions
from siyu.coupons.service.reports import reports
from siyu.coupons.service.templates import (
    CODE_ALPHABET,
    CODE_LENGTH,
    active_templates,
    archive_template,
    create_template,
    get_template,
    list_templates,
    new_code,
    normalize_code,
)

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "NOT_FOUND_HINT",
    "NOT_FOUND_MESSAGE",
    "CouponRefused",
    "RateLimited",
    "active_templates",
    "apply_order_events",
    "archive_template",
    "check",
    "coupon_out",
    "coupons_of_customer",
    "create_template",
    "customer_coupons",
    "effective_status",
    "expiring",
    "get_template",
    "issue",
    "issue_by_actor",
    "list_templates",
    "new_code",
    "normalize_code",
    "public_check",
    "redeem",
    "redeem_by_actor",
    "redeem_for_orders",
    "reports",
    "reverse_redemptions",
    "revoke",
    "usable_codes",
]
