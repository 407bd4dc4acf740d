"""JSON routes of referral campaigns (裂变): campaigns and their tiers, inviters' links and posters,
invites and the review queue, progress, the tree and the KOC board, agents and their commissions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.customers import service as customers
from siyu.referrals import service
from siyu.referrals.models import ReferralLink
from siyu.referrals.schemas import (
    AgentIn,
    AgentOut,
    BoardRow,
    CampaignIn,
    CampaignOut,
    CommissionOut,
    InviteOut,
    LinkIn,
    LinkOut,
    ProgressOut,
    ReviewIn,
    TreeNode,
)
from siyu.referrals.service.poster import MAX_BACKGROUND_BYTES
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api", tags=["referrals"])
INVITE_LINE = "{name} 邀请你"


def link_out(request: Request, link: ReferralLink) -> LinkOut:
    return LinkOut(
        campaign_id=link.campaign_id,
        inviter_customer_id=link.inviter_customer_id,
        token=link.token,
        path=service.landing_path(link),
        url=service.landing_url(str(request.base_url), link),
    )


@router.get("/referral-campaigns", response_model=list[CampaignOut])
def list_campaigns(session: DbSession, actor: Actor = require(Permission.READ)) -> list[CampaignOut]:
    return [
        service.campaign_out(session, c)
        for c in service.list_campaigns(session, workspace_id=actor.workspace_id)
    ]


@router.post("/referral-campaigns", response_model=CampaignOut, status_code=201)
def create_campaign(
    body: CampaignIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> CampaignOut:
    return service.campaign_out(session, service.create_campaign(session, actor=actor, spec=body))


@router.get("/referral-campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(
    campaign_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> CampaignOut:
    campaign = service.get_campaign(session, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    return service.campaign_out(session, campaign)


@router.post("/referral-campaigns/{campaign_id}/poster-image", status_code=204)
async def set_poster_image(
    campaign_id: int,
    session: DbSession,
    image: Annotated[UploadFile, File()],
    actor: Actor = require(Permission.WRITE),
) -> Response:
    """Use an uploaded PNG or JPEG (up to 4 MB) as the poster background."""
    data = await image.read(MAX_BACKGROUND_BYTES + 1)
    if not data:
        raise ValidationFailed("the upload is empty", where="image", hint="send a PNG or JPEG")
    service.set_poster_image(session, actor=actor, campaign_id=campaign_id, image=data)
    return Response(status_code=204)


@router.post("/referral-campaigns/{campaign_id}/links", response_model=LinkOut)
def make_link(
    campaign_id: int,
    body: LinkIn,
    request: Request,
    session: DbSession,
    actor: Actor = require(Permission.WRITE),
) -> LinkOut:
    """The customer's personal link in the campaign (the same one on every call)."""
    link = service.link_for_by_actor(
        session, actor=actor, campaign_id=campaign_id, customer_id=body.customer_id
    )
    return link_out(request, link)


@router.get("/referral-campaigns/{campaign_id}/links/{customer_id}/poster.png")
def poster(
    campaign_id: int,
    customer_id: int,
    request: Request,
    session: DbSession,
    actor: Actor = require(Permission.READ),
) -> Response:
    """The inviter's poster: title, their name and the QR of their link."""
    link = _visible_link(session, actor, campaign_id, customer_id)
    data = service.poster_for(
        session, link=link, url=service.landing_url(str(request.base_url), link), invite_line=INVITE_LINE
    )
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


def _visible_link(session: DbSession, actor: Actor, campaign_id: int, customer_id: int) -> ReferralLink:
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return service.existing_link(
        session, workspace_id=actor.workspace_id, campaign_id=campaign_id, inviter_customer_id=customer_id
    )


@router.get("/referral-campaigns/{campaign_id}/progress", response_model=list[ProgressOut])
def progress(
    campaign_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> list[ProgressOut]:
    return service.progress(session, actor=actor, campaign_id=campaign_id)


@router.get("/referral-campaigns/{campaign_id}/tree", response_model=list[TreeNode])
def tree(campaign_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> list[TreeNode]:
    return service.tree(session, actor=actor, campaign_id=campaign_id)


@router.get("/referral-campaigns/{campaign_id}/invites", response_model=list[InviteOut])
def invites(
    campaign_id: int,
    session: DbSession,
    status: Annotated[str | None, Query(max_length=16, description="held: the review queue")] = None,
    actor: Actor = require(Permission.READ),
) -> list[InviteOut]:
    if status == "held":
        rows = service.review_queue(session, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    else:
        rows = service.list_invites(
            session, workspace_id=actor.workspace_id, campaign_id=campaign_id, status=status
        )
    return [InviteOut.model_validate(r) for r in rows]


@router.post("/referral-invites/{invite_id}/review", response_model=InviteOut)
def review(
    invite_id: int, body: ReviewIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> InviteOut:
    """Approve or reject a held invite."""
    return InviteOut.model_validate(
        service.review(session, actor=actor, invite_id=invite_id, decision=body.decision)
    )


@router.get("/referral-board", response_model=list[BoardRow])
def board(
    session: DbSession,
    campaign_id: Annotated[int | None, Query()] = None,
    actor: Actor = require(Permission.READ),
) -> list[BoardRow]:
    """The KOC board: inviters ranked by invitees and their invitees' net revenue."""
    return service.board(session, actor=actor, campaign_id=campaign_id)


@router.get("/referral-agents", response_model=list[AgentOut])
def agents(session: DbSession, actor: Actor = require(Permission.READ)) -> list[AgentOut]:
    """Every agent with their invitees and commission accrued, reversed and standing."""
    return service.agent_report(session, actor=actor)


@router.post("/referral-agents", response_model=AgentOut, status_code=201)
def make_agent(body: AgentIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> AgentOut:
    """Make a customer an agent (or change an agent's rates)."""
    agent = service.make_agent(session, actor=actor, spec=body)
    return next(a for a in service.agent_report(session, actor=actor) if a.id == agent.id)


@router.get("/referral-agents/{agent_id}/commissions", response_model=list[CommissionOut])
def commissions(
    agent_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> list[CommissionOut]:
    """The agent's commission ledger, newest first."""
    agent = service.get_agent(session, workspace_id=actor.workspace_id, agent_id=agent_id)
    customers.ensure_visible(session, actor=actor, customer_id=agent.customer_id)
    return [
        CommissionOut.model_validate(e)
        for e in service.ledger_of(session, workspace_id=actor.workspace_id, agent_id=agent_id)
    ]
