"""Defining campaigns and their tiers, and each inviter's personal link."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.channels import service as channels
from siyu.core import audit
from siyu.core.db import is_postgres
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.customers import service as customers
from siyu.referrals.models import ReferralCampaign, ReferralLink, ReferralTier
from siyu.referrals.schemas import CampaignIn, CampaignOut, TierOut

TOKEN_BYTES = 16  # 128 random bits: a link cannot be guessed
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
BACKGROUND_KINDS = ("solid", "gradient")


def _check_spec(session: Session, *, workspace_id: int, spec: CampaignIn) -> list[str]:
    name, title = spec.name.strip(), spec.title.strip()
    if not name:
        raise ValidationFailed("a campaign needs a name", where="name", hint="e.g. 老带新 3 月")
    if not title:
        raise ValidationFailed(
            "a campaign needs a poster title", where="title", hint="e.g. 邀3位好友得20元券"
        )
    if spec.ends_at is not None and spec.ends_at <= (spec.starts_at or utcnow()):
        raise ValidationFailed("the campaign ends before it starts", where="ends_at")
    if spec.qualification == "first_order" and spec.min_order_cents <= 0:
        raise ValidationFailed(
            "a campaign counting first orders needs their least amount",
            where="min_order_cents",
            hint="e.g. 5000 for ¥50",
        )
    if spec.background.kind not in BACKGROUND_KINDS:
        raise ValidationFailed(
            f"{spec.background.kind[:20]!r} is not a background",
            where="background.kind",
            hint="solid or gradient",
        )
    colors = spec.background.colors or ["#c0392b"]
    for position, color in enumerate(colors):
        if not _COLOR.match(color):
            raise ValidationFailed(
                f"{color[:20]!r} is not a colour", where=f"background.colors[{position}]", hint="#rrggbb"
            )
    seen: set[int] = set()
    for position, tier in enumerate(spec.tiers):
        where = f"tiers[{position}]"
        if tier.threshold in seen:
            raise ValidationFailed(f"two tiers need {tier.threshold} invites", where=f"{where}.threshold")
        seen.add(tier.threshold)
        if tier.coupon_template_id is None and tier.points <= 0:
            raise ValidationFailed(
                "a tier rewards nothing", where=where, hint="give it a coupon template, points, or both"
            )
        if tier.coupon_template_id is not None:
            coupons.get_template(session, workspace_id=workspace_id, template_id=tier.coupon_template_id)
    if spec.channel_id is not None:
        channels.get_channel(session, workspace_id=workspace_id, channel_id=spec.channel_id)
    return colors


def create_campaign(session: Session, *, actor: Actor, spec: CampaignIn) -> ReferralCampaign:
    """A campaign with its tiers; refuses (ValidationFailed) an empty name or title, tiers of the same
    threshold or without a reward, templates or channels of another workspace."""
    actor.require(Permission.WRITE)
    colors = _check_spec(session, workspace_id=actor.workspace_id, spec=spec)
    campaign = ReferralCampaign(
        workspace_id=actor.workspace_id,
        name=spec.name.strip(),
        title=spec.title.strip(),
        qualification=spec.qualification.value,
        min_order_cents=spec.min_order_cents if spec.qualification == "first_order" else 0,
        starts_at=spec.starts_at or utcnow(),
        ends_at=spec.ends_at,
        reward_cap=spec.reward_cap,
        invites_per_hour=spec.invites_per_hour,
        invites_per_day=spec.invites_per_day,
        channel_id=spec.channel_id,
        poster_background={"kind": spec.background.kind, "colors": colors},
        rewards_granted=0,
        is_active=True,
        created_by_user_id=actor.user_id,
        created_at=utcnow(),
    )
    session.add(campaign)
    session.flush()
    for tier in sorted(spec.tiers, key=lambda t: t.threshold):
        session.add(
            ReferralTier(
                workspace_id=actor.workspace_id,
                campaign_id=campaign.id,
                threshold=tier.threshold,
                coupon_template_id=tier.coupon_template_id,
                points=tier.points,
            )
        )
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="referral.campaign_created",
        target_type="referral_campaign",
        target_id=campaign.id,
        detail={"name": campaign.name, "tiers": [t.threshold for t in spec.tiers]},
    )
    return campaign


def set_poster_image(session: Session, *, actor: Actor, campaign_id: int, image: bytes | None) -> None:
    """Use an uploaded image (PNG or JPEG, checked) as the poster's background; None: back to colours."""
    from siyu.referrals.service.poster import check_background

    actor.require(Permission.WRITE)
    campaign = get_campaign(session, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    if image is not None:
        check_background(image)
    campaign.poster_image = image
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="referral.poster_image_set",
        target_type="referral_campaign",
        target_id=campaign.id,
        detail={"bytes": len(image) if image else 0},
    )


def get_campaign(session: Session, *, workspace_id: int, campaign_id: int) -> ReferralCampaign:
    campaign = session.get(ReferralCampaign, campaign_id)
    if campaign is None or campaign.workspace_id != workspace_id:
        raise NotFound(
            f"referral campaign {campaign_id} does not exist in this workspace", where="campaign_id"
        )
    return campaign


def locked_campaign(session: Session, *, workspace_id: int, campaign_id: int) -> ReferralCampaign:
    """The campaign row, locked until commit on PostgreSQL: rewards and the reward cap are decided
    under it (SQLite serializes writers already)."""
    stmt = select(ReferralCampaign).where(
        ReferralCampaign.id == campaign_id, ReferralCampaign.workspace_id == workspace_id
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    campaign = session.scalars(stmt.execution_options(populate_existing=True)).first()
    if campaign is None:
        raise NotFound(
            f"referral campaign {campaign_id} does not exist in this workspace", where="campaign_id"
        )
    return campaign


def list_campaigns(session: Session, *, workspace_id: int) -> list[ReferralCampaign]:
    return list(
        session.scalars(
            select(ReferralCampaign)
            .where(ReferralCampaign.workspace_id == workspace_id)
            .order_by(ReferralCampaign.created_at.desc(), ReferralCampaign.id.desc())
        )
    )


def tiers_of(session: Session, *, campaign_id: int) -> list[ReferralTier]:
    return list(
        session.scalars(
            select(ReferralTier)
            .where(ReferralTier.campaign_id == campaign_id)
            .order_by(ReferralTier.threshold)
        )
    )


def campaign_out(session: Session, campaign: ReferralCampaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        title=campaign.title,
        qualification=campaign.qualification,
        min_order_cents=campaign.min_order_cents,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        reward_cap=campaign.reward_cap,
        invites_per_hour=campaign.invites_per_hour,
        invites_per_day=campaign.invites_per_day,
        channel_id=campaign.channel_id,
        rewards_granted=campaign.rewards_granted,
        is_active=campaign.is_active,
        has_poster_image=campaign.poster_image is not None,
        tiers=[TierOut.model_validate(t) for t in tiers_of(session, campaign_id=campaign.id)],
        created_at=campaign.created_at,
    )


def is_running(campaign: ReferralCampaign, at: datetime | None = None) -> bool:
    now = at or utcnow()
    return (
        campaign.is_active
        and campaign.starts_at <= now
        and (campaign.ends_at is None or now < campaign.ends_at)
    )


def _link(session: Session, *, campaign_id: int, inviter_customer_id: int) -> ReferralLink | None:
    return session.scalar(
        select(ReferralLink).where(
            ReferralLink.campaign_id == campaign_id, ReferralLink.inviter_customer_id == inviter_customer_id
        )
    )


def link_for(
    session: Session, *, workspace_id: int, campaign_id: int, inviter_customer_id: int
) -> ReferralLink:
    """The inviter's personal link in the campaign, made on first ask (the same link ever after)."""
    campaign = get_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    live = customers.live_customer_ids(workspace_id).subquery()
    if session.scalar(select(live.c[0]).where(live.c[0] == inviter_customer_id)) is None:
        raise NotFound(
            f"customer {inviter_customer_id} does not exist in this workspace", where="customer_id"
        )
    found = _link(session, campaign_id=campaign.id, inviter_customer_id=inviter_customer_id)
    if found is not None:
        return found
    link = ReferralLink(
        workspace_id=workspace_id,
        campaign_id=campaign.id,
        inviter_customer_id=inviter_customer_id,
        token=secrets.token_urlsafe(TOKEN_BYTES),
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(link)
            session.flush()
    except IntegrityError:
        # a concurrent first ask made it meanwhile
        found = _link(session, campaign_id=campaign.id, inviter_customer_id=inviter_customer_id)
        if found is None:
            raise
        return found
    return link


def link_for_by_actor(session: Session, *, actor: Actor, campaign_id: int, customer_id: int) -> ReferralLink:
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return link_for(
        session, workspace_id=actor.workspace_id, campaign_id=campaign_id, inviter_customer_id=customer_id
    )


def link_by_token(session: Session, *, token: str) -> ReferralLink | None:
    """The link of a well-formed token, or None (malformed, unknown: the caller answers the same)."""
    if not token or len(token) > 32 or not re.fullmatch(r"[A-Za-z0-9_\-]+", token):
        return None
    return session.scalar(select(ReferralLink).where(ReferralLink.token == token))


def landing_path(link: ReferralLink) -> str:
    return f"/r/{link.token}"


def landing_url(base_url: str, link: ReferralLink) -> str:
    return base_url.rstrip("/") + landing_path(link)


def inviter_name(session: Session, *, link: ReferralLink) -> str:
    """The inviter's name as their own poster prints it (empty without one)."""
    names = customers.names_of(
        session, workspace_id=link.workspace_id, customer_ids=[link.inviter_customer_id]
    )
    return names.get(link.inviter_customer_id, "")


def inviter_first_name(session: Session, *, link: ReferralLink) -> str:
    """What the public landing shows of the inviter: the first character of their name and a mask
    (王**), never a phone; empty without a name or when the inviter is no longer a live customer."""
    name = inviter_name(session, link=link)
    return (name[0] + "**") if name else ""


def poster_for(session: Session, *, link: ReferralLink, url: str, invite_line: str) -> bytes:
    """The inviter's poster (PNG) for their link `url`, in the campaign's look."""
    from siyu.referrals.service import poster

    campaign = get_campaign(session, workspace_id=link.workspace_id, campaign_id=link.campaign_id)
    background = campaign.poster_background or {}
    return poster.compose(
        url=url,
        title=campaign.title,
        inviter_name=inviter_name(session, link=link),
        invite_line=invite_line,
        background_kind=str(background.get("kind", "gradient")),
        colors=list(background.get("colors") or ["#c0392b", "#f39c12"]),
        image=campaign.poster_image,
    )


def existing_link(
    session: Session, *, workspace_id: int, campaign_id: int, inviter_customer_id: int
) -> ReferralLink:
    """The inviter's link in the campaign; NotFound when none was made yet."""
    get_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    found = _link(session, campaign_id=campaign_id, inviter_customer_id=inviter_customer_id)
    if found is None or found.workspace_id != workspace_id:
        raise NotFound(
            f"customer {inviter_customer_id} has no link in this campaign yet",
            where="customer_id",
            hint="make it first: POST /api/referral-campaigns/{id}/links",
        )
    return found
