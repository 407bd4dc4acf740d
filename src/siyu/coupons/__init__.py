"""Coupons (优惠券): templates, issued coupons with unguessable codes, redemptions and their reports."""
