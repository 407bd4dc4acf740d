"""Invites through a personal link: the friend's phone becomes (or names) a customer and the invite is
recorded with what the anti-fraud checks found — a self-invite and the same person under another
identity are refused, a friend already in the pool is recorded but never counted, velocity beyond the
campaign's limit and repeated submissions from one client are held for review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.db import is_postgres
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import identity, identity_values, rollups
from siyu.customers import service as customers
from siyu.customers.models import IdentityKind
from siyu.referrals.models import (
    InviteStatus,
    Qualification,
    ReferralCampaign,
    ReferralInvite,
    ReferralLink,
)
from siyu.referrals.service.campaigns import get_campaign, is_running, locked_campaign
from siyu.referrals.service.rewards import grant_rewards

EVENT_INVITED = "referral.invited"
SOURCE = "referral"
SAME_CLIENT_LIMIT = 3  # new friends a day from one client for one inviter before they are held


class Reason:
    SELF_INVITE = "self_invite"
    SAME_PERSON = "same_person"  # merged with the inviter, or an open identity review links them
    IN_POOL = "in_pool"  # the friend was a customer before the invite
    VELOCITY_HOUR = "velocity_hour"
    VELOCITY_DAY = "velocity_day"
    SAME_CLIENT = "same_client"
    REVIEWER = "reviewer"


@dataclass(frozen=True)
class InviteResult:
    invite: ReferralInvite
    created: bool  # False: this friend was recorded in the campaign before (a retry or a second link)


class CampaignClosed(Conflict):
    """The campaign has not started, has ended or was switched off."""


def _existing_invite(
    session: Session, *, campaign_id: int, invitee_customer_id: int
) -> ReferralInvite | None:
    return session.scalar(
        select(ReferralInvite).where(
            ReferralInvite.campaign_id == campaign_id,
            ReferralInvite.invitee_customer_id == invitee_customer_id,
        )
    )


def _linked_by_review(session: Session, *, workspace_id: int, a: int, b: int) -> bool:
    """Whether an open identity review says the two customers may be one person."""
    return identity.open_review_between(session, workspace_id=workspace_id, a=a, b=b)


def _new_customer(
    session: Session, *, campaign: ReferralCampaign, phone: str, at: datetime
) -> tuple[int, bool]:
    keys = pl.DataFrame(
        {
            "kind": [str(IdentityKind.PHONE)],
            "value": [phone],
            "first_at": [at],
            "first_channel_id": [campaign.channel_id],
        },
        schema={
            "kind": pl.Utf8,
            "value": pl.Utf8,
            "first_at": pl.Datetime("us", "UTC"),
            "first_channel_id": pl.Int64,
        },
    )
    ids, created = identity.resolve_single_keys(
        session, workspace_id=campaign.workspace_id, keys=keys, source=SOURCE
    )
    if created:
        rollups.refresh_rollups(session, workspace_id=campaign.workspace_id, customer_ids=created)
    return int(ids[0]), bool(created)


def _invites_since(session: Session, *, campaign_id: int, inviter_customer_id: int, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count(ReferralInvite.id)).where(
                ReferralInvite.campaign_id == campaign_id,
                ReferralInvite.inviter_customer_id == inviter_customer_id,
                ReferralInvite.invited_at > since,
                ReferralInvite.status != InviteStatus.EXISTING,
            )
        )
        or 0
    )


def _same_client_count(session: Session, *, link: ReferralLink, client_hash: str, since: datetime) -> int:
    if not client_hash:
        return 0
    return int(
        session.scalar(
            select(func.count(ReferralInvite.id)).where(
                ReferralInvite.campaign_id == link.campaign_id,
                ReferralInvite.inviter_customer_id == link.inviter_customer_id,
                ReferralInvite.client_hash == client_hash,
                ReferralInvite.invited_at > since,
            )
        )
        or 0
    )


def _hold_reason(
    session: Session, *, campaign: ReferralCampaign, link: ReferralLink, client_hash: str, at: datetime
) -> str | None:
    if campaign.invites_per_hour is not None and (
        _invites_since(
            session,
            campaign_id=campaign.id,
            inviter_customer_id=link.inviter_customer_id,
            since=at - timedelta(hours=1),
        )
        >= campaign.invites_per_hour
    ):
        return Reason.VELOCITY_HOUR
    if campaign.invites_per_day is not None and (
        _invites_since(
            session,
            campaign_id=campaign.id,
            inviter_customer_id=link.inviter_customer_id,
            since=at - timedelta(days=1),
        )
        >= campaign.invites_per_day
    ):
        return Reason.VELOCITY_DAY
    if _same_client_count(session, link=link, client_hash=client_hash, since=at - timedelta(days=1)) >= (
        SAME_CLIENT_LIMIT
    ):
        return Reason.SAME_CLIENT
    return None


def _lock_phone(session: Session, *, workspace_id: int, phone: str) -> None:
    """Serialize invites of one phone across campaigns (each holds only its own campaign's lock), so
    that two of them cannot both find the phone unknown and both create its customer. A transaction
    lock on PostgreSQL; SQLite admits one writer already."""
    if is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"referral-phone:{workspace_id}:{phone}"},
        )


def _counted_status(campaign: ReferralCampaign) -> InviteStatus:
    return InviteStatus.QUALIFIED if campaign.qualification == Qualification.JOIN else InviteStatus.JOINED


def _live_inviter(session: Session, *, link: ReferralLink) -> None:
    live = customers.live_customer_ids(link.workspace_id).subquery()
    if session.scalar(select(live.c[0]).where(live.c[0] == link.inviter_customer_id)) is None:
        raise NotFound("this invite link does not exist", where="token")


def record_invite(
    session: Session, *, link: ReferralLink, phone: str, client_hash: str = "", at: datetime | None = None
) -> InviteResult:
    """The friend who left `phone` on the inviter's link: a new customer (first channel: the campaign's)
    or the customer holding that phone, and the invite with its anti-fraud verdict; a qualifying invite
    grants the tiers it reaches. A retry (the same friend again) returns the invite recorded before.
    Refuses a malformed phone (ValidationFailed) and a campaign not running (CampaignClosed)."""
    now = at or utcnow()
    normalized = identity_values.normalize("phone", (phone or "")[:40])
    if normalized is None:
        raise ValidationFailed("this is not a mobile number", where="phone", hint="e.g. 138 1234 5678")
    campaign = locked_campaign(session, workspace_id=link.workspace_id, campaign_id=link.campaign_id)
    if not is_running(campaign, now):
        raise CampaignClosed("this campaign is not running", where="campaign_id")
    _live_inviter(session, link=link)
    _lock_phone(session, workspace_id=link.workspace_id, phone=normalized)
    known = customers.customer_id_by_identity(
        session, workspace_id=link.workspace_id, kind=str(IdentityKind.PHONE), value=normalized
    )
    if known is not None:
        found = _existing_invite(session, campaign_id=campaign.id, invitee_customer_id=known)
        if found is not None:
            return InviteResult(found, created=False)
    status: InviteStatus
    reason = ""
    status_if_approved: str | None = None
    if known == link.inviter_customer_id:
        invitee_id, status, reason = known, InviteStatus.REJECTED, Reason.SELF_INVITE
    elif known is not None:
        invitee_id = known
        if _linked_by_review(session, workspace_id=link.workspace_id, a=known, b=link.inviter_customer_id):
            status, reason = InviteStatus.REJECTED, Reason.SAME_PERSON
        else:
            status, reason = InviteStatus.EXISTING, Reason.IN_POOL
    else:
        invitee_id, _created = _new_customer(session, campaign=campaign, phone=normalized, at=now)
        status = _counted_status(campaign)
        held = _hold_reason(session, campaign=campaign, link=link, client_hash=client_hash, at=now)
        if held is not None:
            status_if_approved, status, reason = status.value, InviteStatus.HELD, held
    invite = ReferralInvite(
        workspace_id=link.workspace_id,
        campaign_id=campaign.id,
        inviter_customer_id=link.inviter_customer_id,
        invitee_customer_id=invitee_id,
        status=status.value,
        reason=reason,
        status_if_approved=status_if_approved,
        client_hash=client_hash[:32],
        invited_at=now,
        qualified_at=now if status == InviteStatus.QUALIFIED else None,
    )
    try:
        with session.begin_nested():
            session.add(invite)
            session.flush()
    except IntegrityError:  # pragma: no cover - the campaign lock serializes invites of one campaign
        found = _existing_invite(session, campaign_id=campaign.id, invitee_customer_id=invitee_id)
        if found is None:
            raise
        return InviteResult(found, created=False)
    audit.record(
        session,
        workspace_id=link.workspace_id,
        actor_user_id=None,
        action="referral.invited",
        target_type="referral_invite",
        target_id=invite.id,
        detail={"campaign_id": campaign.id, "status": invite.status, "reason": reason},
    )
    domain_events.record(
        session,
        workspace_id=link.workspace_id,
        type=EVENT_INVITED,
        customer_id=invitee_id,
        payload={
            "campaign_id": campaign.id,
            "inviter_customer_id": link.inviter_customer_id,
            "status": invite.status,
        },
        occurred_at=now,
    )
    if invite.status == InviteStatus.QUALIFIED:
        grant_rewards(
            session,
            workspace_id=link.workspace_id,
            campaign_id=campaign.id,
            inviter_customer_id=link.inviter_customer_id,
            at=now,
        )
    return InviteResult(invite, created=True)


def _locked_invite(session: Session, *, workspace_id: int, invite_id: int) -> ReferralInvite:
    invite = session.get(ReferralInvite, invite_id)
    if invite is None or invite.workspace_id != workspace_id:
        raise NotFound(f"invite {invite_id} does not exist in this workspace", where="invite_id")
    # the campaign's lock serializes reviews with the invites and rewards of its campaign
    locked_campaign(session, workspace_id=workspace_id, campaign_id=invite.campaign_id)
    session.refresh(invite)
    return invite


def review(session: Session, *, actor: Actor, invite_id: int, decision: str) -> ReferralInvite:
    """Approve a held invite (it counts as it would have; a qualifying one grants the tiers it
    reaches) or reject it. Deciding an invite decided before returns it unchanged."""
    actor.require(Permission.WRITE)
    if decision not in ("approve", "reject"):
        raise ValidationFailed(
            f"{decision[:20]!r} is not a decision", where="decision", hint="approve or reject"
        )
    invite = _locked_invite(session, workspace_id=actor.workspace_id, invite_id=invite_id)
    if invite.status != InviteStatus.HELD:
        return invite
    now = utcnow()
    if decision == "approve":
        invite.status = invite.status_if_approved or InviteStatus.JOINED.value
        if invite.status == InviteStatus.QUALIFIED:
            invite.qualified_at = now
    else:
        invite.status = InviteStatus.REJECTED.value
        invite.reason = Reason.REVIEWER if not invite.reason else invite.reason
    invite.reviewed_at = now
    invite.reviewed_by_user_id = actor.user_id
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action=f"referral.invite_{decision}d",
        target_type="referral_invite",
        target_id=invite.id,
        detail={"campaign_id": invite.campaign_id},
    )
    if invite.status == InviteStatus.QUALIFIED:
        grant_rewards(
            session,
            workspace_id=actor.workspace_id,
            campaign_id=invite.campaign_id,
            inviter_customer_id=invite.inviter_customer_id,
        )
    return invite


def review_queue(session: Session, *, workspace_id: int, campaign_id: int) -> list[ReferralInvite]:
    """The held invites of a campaign, oldest first."""
    get_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    return list(
        session.scalars(
            select(ReferralInvite)
            .where(
                ReferralInvite.workspace_id == workspace_id,
                ReferralInvite.campaign_id == campaign_id,
                ReferralInvite.status == InviteStatus.HELD,
            )
            .order_by(ReferralInvite.invited_at, ReferralInvite.id)
            .limit(500)
        )
    )


def list_invites(
    session: Session, *, workspace_id: int, campaign_id: int, status: str | None = None, limit: int = 500
) -> list[ReferralInvite]:
    """The campaign's invites, newest first; with `status`, only those in it."""
    get_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    conditions = [ReferralInvite.workspace_id == workspace_id, ReferralInvite.campaign_id == campaign_id]
    if status:
        conditions.append(ReferralInvite.status == status)
    return list(
        session.scalars(
            select(ReferralInvite)
            .where(*conditions)
            .order_by(ReferralInvite.invited_at.desc(), ReferralInvite.id.desc())
            .limit(max(1, min(limit, 2000)))
        )
    )


def qualify_on_order(
    session: Session, *, workspace_id: int, customer_id: int, order_ref: str, paid_cents: int, at: datetime
) -> int:
    """An invitee's paid order qualifies their waiting invites in campaigns counting first orders of at
    least the order's amount; the inviters get the tiers reached. Returns how many invites qualified."""
    waiting = list(
        session.scalars(
            select(ReferralInvite)
            .join(ReferralCampaign, ReferralCampaign.id == ReferralInvite.campaign_id)
            .where(
                ReferralInvite.workspace_id == workspace_id,
                ReferralInvite.invitee_customer_id == customer_id,
                ReferralInvite.status == InviteStatus.JOINED,
                ReferralCampaign.qualification == Qualification.FIRST_ORDER,
                ReferralCampaign.min_order_cents <= paid_cents,
            )
        )
    )
    for invite in waiting:
        invite.status = InviteStatus.QUALIFIED.value
        invite.qualified_at = at
        invite.qualifying_order_ref = order_ref[:100]
        session.flush()
        grant_rewards(
            session,
            workspace_id=workspace_id,
            campaign_id=invite.campaign_id,
            inviter_customer_id=invite.inviter_customer_id,
            at=at,
        )
    return len(waiting)


def reject_same_person(session: Session, *, workspace_id: int, survivor_id: int, merged_id: int) -> int:
    """A merge made an invitee and their inviter one person: the invites between them are rejected
    (rewards granted before stay; docs/referrals.md). Returns how many were rejected."""
    rows = list(
        session.scalars(
            select(ReferralInvite).where(
                ReferralInvite.workspace_id == workspace_id,
                ReferralInvite.status.in_(
                    [s.value for s in (InviteStatus.JOINED, InviteStatus.QUALIFIED, InviteStatus.HELD)]
                ),
                or_(
                    (ReferralInvite.inviter_customer_id == survivor_id)
                    & (ReferralInvite.invitee_customer_id == merged_id),
                    (ReferralInvite.inviter_customer_id == merged_id)
                    & (ReferralInvite.invitee_customer_id == survivor_id),
                ),
            )
        )
    )
    for invite in rows:
        invite.status = InviteStatus.REJECTED.value
        invite.reason = Reason.SAME_PERSON
        audit.record(
            session,
            workspace_id=workspace_id,
            actor_user_id=None,
            action="referral.invite_rejected",
            target_type="referral_invite",
            target_id=invite.id,
            detail={"reason": Reason.SAME_PERSON, "merged_id": merged_id},
        )
    return len(rows)
