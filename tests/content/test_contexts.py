"""The template variables of customers, read from their domains through the services."""

from __future__ import annotations

from siyu.auth.models import Role
from siyu.content import service as content
from siyu.core.db import Database
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn
from siyu.membership import service as membership
from siyu.membership.models import EntryKind
from siyu.membership.schemas import TierIn
from tests.factories import make_customer, make_member, unique


def test_contexts_carry_profile_membership_coupons_and_owner(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id, role=Role.OWNER, name="店长小周")
        rich = make_customer(
            session, workspace_id=workspace_id, name="钱多多", city="成都", owner_user_id=owner.user_id,
            attributes={"favourite_store": "春熙路店"},
        )  # fmt: skip
        bare = make_customer(session, workspace_id=workspace_id, name=None)
        membership.create_tier(session, actor=owner.actor, body=TierIn(name=unique("银卡"), threshold=0))
        membership.evaluate_tier(session, workspace_id=workspace_id, customer_id=rich.id)
        membership.apply(
            session, workspace_id=workspace_id, customer_id=rich.id, kind=EntryKind.EARN, points=300,
            source_kind="test", source_ref=unique("p"),
        )  # fmt: skip
        template = coupons.create_template(
            session, actor=owner.actor,
            body=TemplateIn(name=unique("满减"), type="no_threshold", discount_cents=300, valid_days=7, per_customer_cap=5),
        )  # fmt: skip
        older, newer = (
            coupons.issue(
                session,
                workspace_id=workspace_id,
                template_id=template.id,
                customer_id=rich.id,
                source_kind="staff",
                source_ref="t",
                idempotency_key=unique("k"),
            )
            for _ in range(2)
        )
        revoked = coupons.issue(
            session, workspace_id=workspace_id, template_id=template.id, customer_id=rich.id,
            source_kind="staff", source_ref="t", idempotency_key=unique("k"),
        )  # fmt: skip
        coupons.revoke(session, actor=owner.actor, coupon_id=revoked.id)
        found = content.render_contexts(
            session, workspace_id=workspace_id, customer_ids=[rich.id, bare.id, 10**9]
        )
    assert set(found) == {rich.id, bare.id}
    mine = found[rich.id]
    assert (mine["name"], mine["city"], mine["owner_name"], mine["points"]) == (
        "钱多多",
        "成都",
        "店长小周",
        300,
    )
    assert mine["tier"].startswith("银卡") and mine["attributes"] == {"favourite_store": "春熙路店"}
    codes = [c["code"] for c in mine["coupons"]]
    assert set(codes) == {older.code, newer.code} and mine["coupon_code"] == codes[0]
    assert revoked.code not in codes
    assert found[bare.id] == {
        "customer_id": bare.id, "gender": "unknown", "attributes": {}, "coupons": [], "points": 0,
    }  # fmt: skip
