"""What a template knows about each customer, loaded for a whole chunk of customers in a few queries:
profile (customers), tier and points (membership), usable coupon codes (coupons), owner's name (auth)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.coupons import service as coupons
from siyu.customers import service as customers
from siyu.membership import service as membership


def render_contexts(
    session: Session, *, workspace_id: int, customer_ids: Iterable[int], now: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """The template variables of each given customer of this workspace. A value the customer lacks (no
        name, no tier, no coupon) is left out, so that a template using it fails for that customer alone
        (StrictUndefined) unless it gives a fallback (`{{ name | default("朋友") }}`). Coupons count as usable
    at `now` (the send's time; default the present)."""
    ids = sorted(set(customer_ids))
    found = customers.profiles(session, workspace_id=workspace_id, customer_ids=ids)
    members = membership.member_facts(session, workspace_id=workspace_id, customer_ids=list(found))
    codes = coupons.usable_codes(session, workspace_id=workspace_id, customer_ids=list(found), now=now)
    staff = (
        {m.user_id: m.display_name for m in auth.list_members(session, workspace_id=workspace_id)}
        if any(p.owner_user_id for p in found.values())
        else {}
    )
    contexts: dict[int, dict[str, Any]] = {}
    for customer_id, profile in found.items():
        values: dict[str, Any] = {
            "customer_id": customer_id,
            "gender": profile.gender,
            "attributes": profile.attributes,
            "coupons": codes.get(customer_id, []),
        }
        for name, value in (("name", profile.name), ("city", profile.city), ("birthday", profile.birthday)):
            if value:
                values[name] = value
        points, tier = members.get(customer_id, (0, None))
        values["points"] = points
        if tier:
            values["tier"] = tier
        if codes.get(customer_id):
            values["coupon_code"] = codes[customer_id][0]["code"]
        owner = staff.get(profile.owner_user_id) if profile.owner_user_id else None
        if owner:
            values["owner_name"] = owner
        contexts[customer_id] = values
    return contexts
