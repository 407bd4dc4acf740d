"""Referral test data: coupon templates, campaigns, inviters and invites through the services."""

from __future__ import annotations

from typing import Any

from siyu.core.db import Database
from siyu.coupons import service as coupons
from siyu.coupons.schemas import TemplateIn
from siyu.ingest import service as ingest
from siyu.referrals import service
from siyu.referrals.models import ReferralCampaign, ReferralLink
from siyu.referrals.schemas import CampaignIn, TierIn
from tests.factories import Member, make_customer, unique


def template(db: Database, owner: Member, **fields: Any) -> int:
    body = TemplateIn(
        name=fields.pop("name", unique("券")),
        type=fields.pop("type", "no_threshold"),
        discount_cents=fields.pop("discount_cents", 2000),
        valid_days=30,
        per_customer_cap=fields.pop("per_customer_cap", 5),
        **fields,
    )
    with db.transaction() as session:
        return coupons.create_template(session, actor=owner.actor, body=body).id


def campaign(db: Database, owner: Member, tiers: list[TierIn], **fields: Any) -> ReferralCampaign:
    spec = CampaignIn(
        name=fields.pop("name", unique("老带新")),
        title=fields.pop("title", "邀3位好友得20元券"),
        tiers=tiers,
        **fields,
    )
    with db.transaction() as session:
        return service.create_campaign(session, actor=owner.actor, spec=spec)


def inviter(db: Database, workspace_id: int, name: str = "王小美", phone: str | None = None) -> int:
    with db.transaction() as session:
        return make_customer(session, workspace_id=workspace_id, name=name, phone=phone).id


def link(db: Database, workspace_id: int, campaign_id: int, customer_id: int) -> ReferralLink:
    with db.transaction() as session:
        return service.link_for(
            session, workspace_id=workspace_id, campaign_id=campaign_id, inviter_customer_id=customer_id
        )


def invite(db: Database, link: ReferralLink, phone: str, client: str = "") -> service.InviteResult:
    with db.transaction() as session:
        return service.record_invite(session, link=link, phone=phone, client_hash=client)


def import_orders(db: Database, workspace_id: int, records: list[dict[str, Any]]) -> None:
    with db.transaction() as session:
        _, _, rejects = ingest.import_records(
            session, workspace_id=workspace_id, kind="orders", records=records, strict=True
        )
        assert rejects == [], rejects


def process(db: Database, workspace_id: int) -> int:
    with db.transaction() as session:
        return service.process_all(session, workspace_id=workspace_id)
