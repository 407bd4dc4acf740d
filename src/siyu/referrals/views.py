"""Referral pages (裂变): the campaigns list, the create form (rules, tiers, poster look), the campaign
page (progress, referral tree, KOC board, review queue, making an inviter's link), an inviter's link
with their poster, and the agents' report. The public landing is in landing.py, mounted with these.

Writes run in the request's transaction and redirect (post/redirect/get); a refused form is shown
again with the reason, inside a savepoint so nothing of it is written.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from siyu.auth.service import Actor, Permission
from siyu.channels import service as channels
from siyu.core.errors import SiyuError, ValidationFailed
from siyu.coupons import service as coupons
from siyu.customers import service as customers
from siyu.referrals import landing, service
from siyu.referrals.models import Qualification
from siyu.referrals.schemas import AgentIn, BackgroundIn, CampaignIn, TierIn
from siyu.referrals.service.poster import MAX_BACKGROUND_BYTES
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error
from siyu.workspaces import service as workspaces

router = APIRouter(include_in_schema=False)
router.routes.extend(landing.router.routes)
TIER_ROWS = 3


def _field(form: FormData, name: str) -> str:
    return form_text(form, name)[:400]


def _int_or_none(text: str, *, where: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed(f"{text[:40]!r} is not a whole number", where=where)
    return int(text)


def _cents(text: str, *, where: str) -> int:
    cleaned = text.replace(",", "").replace("¥", "").replace("￥", "").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        amount = Decimal("NaN")
    if (
        not amount.is_finite()
        or amount < 0
        or amount != amount.quantize(Decimal("0.01"))
        or len(cleaned) > 16
    ):
        raise ValidationFailed(
            f"{text[:40]!r} is not an amount", where=where, hint="yuan with up to 2 decimals"
        )
    return int(amount * 100)


def _percent(text: str, *, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationFailed(f"{text[:40]!r} is not a percent", where=where, hint="e.g. 5 or 7.5") from None
    if not 0 <= value <= 100:
        raise ValidationFailed(f"{text[:40]!r} is not a percent from 0 to 100", where=where)
    return value


def _day(text: str, zone: str, *, where: str) -> datetime | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ValidationFailed(f"{text[:40]!r} is not a date", where=where, hint="YYYY-MM-DD") from None
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


def spec_from_form(form: FormData, zone: str) -> CampaignIn:
    """The form's fields as the service's input; a malformed number is refused with its field."""
    tiers = []
    for row in range(TIER_ROWS):
        threshold = _int_or_none(_field(form, f"tier_{row}_threshold"), where=f"tiers[{row}].threshold")
        if threshold is None:
            continue
        tiers.append(
            TierIn(
                threshold=max(1, threshold),
                coupon_template_id=_int_or_none(
                    _field(form, f"tier_{row}_template"), where=f"tiers[{row}].template"
                ),
                points=_int_or_none(_field(form, f"tier_{row}_points"), where=f"tiers[{row}].points") or 0,
            )
        )
    if not tiers:
        raise ValidationFailed(
            "a campaign needs at least one tier", where="tiers", hint="e.g. 3 invites → a coupon"
        )
    qualification = _field(form, "qualification") or Qualification.JOIN.value
    if qualification not in {q.value for q in Qualification}:
        raise ValidationFailed(f"{qualification[:20]!r} is not a qualification", where="qualification")
    min_order = _field(form, "min_order")
    colors = [c for c in (_field(form, "color_1"), _field(form, "color_2")) if c]
    return CampaignIn(
        name=_field(form, "name"),
        title=_field(form, "title")[:100],
        qualification=Qualification(qualification),
        min_order_cents=_cents(min_order, where="min_order") if min_order else 0,
        starts_at=_day(_field(form, "starts_on"), zone, where="starts_on"),
        ends_at=_day(_field(form, "ends_on"), zone, where="ends_on"),
        reward_cap=_int_or_none(_field(form, "reward_cap"), where="reward_cap") or None,
        invites_per_hour=_int_or_none(_field(form, "per_hour"), where="per_hour") or None,
        invites_per_day=_int_or_none(_field(form, "per_day"), where="per_day") or None,
        channel_id=_int_or_none(_field(form, "channel_id"), where="channel_id"),
        background=BackgroundIn(kind=_field(form, "background") or "gradient", colors=colors or ["#c0392b"]),
        tiers=tiers,
    )


def _form_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    values: dict[str, Any],
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "referrals/form.html",
        {
            "v": values,
            "rows": range(TIER_ROWS),
            "templates": coupons.active_templates(session, workspace_id=actor.workspace_id),
            "channels": channels.list_channels(session, workspace_id=actor.workspace_id),
            "qualifications": [q.value for q in Qualification],
            "error": error,
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


@router.get("/referrals")
def list_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return render(
        request,
        "referrals/list.html",
        {
            "campaigns": service.list_campaigns(session, workspace_id=actor.workspace_id),
            "is_running": service.is_running,
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
    )


@router.get("/referrals/new")
def new_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    defaults = {"qualification": "join", "background": "gradient", "color_1": "#c0392b", "color_2": "#f39c12"}
    return _form_page(request, session, actor, values=defaults)


@router.post("/referrals")
def create(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    zone = workspaces.get_workspace(session, workspace_id=actor.workspace_id).timezone
    try:
        spec = spec_from_form(form, zone)
        with session.begin_nested():
            campaign = service.create_campaign(session, actor=actor, spec=spec)
    except SiyuError as error:
        values = {key: _field(form, key) for key in form}
        return _form_page(request, session, actor, values=values, error=error, status_code=error.status_code)
    return RedirectResponse(f"/referrals/{campaign.id}?saved=1", status_code=303)


@router.get("/referrals/agents")
def agents_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return render(
        request,
        "referrals/agents.html",
        {
            "agents": service.agent_report(session, actor=actor),
            "can_write": actor.can(Permission.WRITE),
            "error": None,
        },
        session=session,
        actor=actor,
    )


@router.post("/referrals/agents")
def make_agent(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    try:
        customer_id = _int_or_none(_field(form, "customer_id"), where="customer_id")
        if customer_id is None:
            raise ValidationFailed("name the customer to make an agent", where="customer_id")
        per_category: dict[str, float] = {}
        category = _field(form, "category")
        if category:
            per_category[category] = _percent(_field(form, "category_rate"), where="category_rate")
        spec = AgentIn(
            customer_id=customer_id,
            rate_percent=_percent(_field(form, "rate") or "0", where="rate"),
            category_rates_percent=per_category,
        )
        with session.begin_nested():
            service.make_agent(session, actor=actor, spec=spec)
    except SiyuError as error:
        return render(
            request,
            "referrals/agents.html",
            {"agents": service.agent_report(session, actor=actor), "can_write": True, "error": error},
            session=session,
            actor=actor,
            status_code=error.status_code,
        )
    return RedirectResponse("/referrals/agents", status_code=303)


@router.get("/referrals/agents/{agent_id}")
def agent_page(request: Request, session: DbSession, actor: CurrentActor, agent_id: int) -> Response:
    """One agent's commission ledger, newest first."""
    actor.require(Permission.READ)
    try:
        agent = service.get_agent(session, workspace_id=actor.workspace_id, agent_id=agent_id)
        customers.ensure_visible(session, actor=actor, customer_id=agent.customer_id)
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    entries = service.ledger_of(session, workspace_id=actor.workspace_id, agent_id=agent.id)
    return render(
        request,
        "referrals/agent.html",
        {
            "agent": agent,
            "name": service.names(session, actor=actor, customer_ids=[agent.customer_id]).get(
                agent.customer_id, ""
            ),
            "entries": entries,
            "invitee_names": service.names(
                session, actor=actor, customer_ids=sorted({e.invitee_customer_id for e in entries})
            ),
        },
        session=session,
        actor=actor,
    )


@router.get("/referrals/{campaign_id}")
def detail_page(request: Request, session: DbSession, actor: CurrentActor, campaign_id: int) -> Response:
    actor.require(Permission.READ)
    try:
        campaign = service.get_campaign(session, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    queue = service.review_queue(session, workspace_id=actor.workspace_id, campaign_id=campaign.id)
    queue_names = service.names(
        session,
        actor=actor,
        customer_ids=[i.inviter_customer_id for i in queue] + [i.invitee_customer_id for i in queue],
    )
    templates = {t.id: t.name for t in coupons.list_templates(session, workspace_id=actor.workspace_id)}
    return render(
        request,
        "referrals/detail.html",
        {
            "campaign": campaign,
            "running": service.is_running(campaign),
            "tiers": service.tiers_of(session, campaign_id=campaign.id),
            "templates": templates,
            "progress": service.progress(session, actor=actor, campaign_id=campaign.id),
            "tree": service.tree(session, actor=actor, campaign_id=campaign.id),
            "board": service.board(session, actor=actor, campaign_id=campaign.id),
            "queue": queue,
            "queue_names": queue_names,
            "can_write": actor.can(Permission.WRITE),
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        actor=actor,
    )


@router.post("/referrals/{campaign_id}/links")
def make_link(
    request: Request, session: DbSession, actor: CurrentActor, campaign_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    try:
        customer_id = _int_or_none(_field(form, "customer_id"), where="customer_id")
        if customer_id is None:
            raise ValidationFailed("name the inviter", where="customer_id", hint="the customer's id")
        with session.begin_nested():
            service.link_for_by_actor(session, actor=actor, campaign_id=campaign_id, customer_id=customer_id)
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/referrals/{campaign_id}/links/{customer_id}", status_code=303)


@router.get("/referrals/{campaign_id}/links/{customer_id}")
def link_page(
    request: Request, session: DbSession, actor: CurrentActor, campaign_id: int, customer_id: int
) -> Response:
    actor.require(Permission.READ)
    try:
        customers.ensure_visible(session, actor=actor, customer_id=customer_id)
        link = service.existing_link(
            session, workspace_id=actor.workspace_id, campaign_id=campaign_id, inviter_customer_id=customer_id
        )
        campaign = service.get_campaign(session, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "referrals/link.html",
        {
            "campaign": campaign,
            "customer_id": customer_id,
            "name": service.names(session, actor=actor, customer_ids=[customer_id]).get(customer_id, ""),
            "url": service.landing_url(str(request.base_url), link),
        },
        session=session,
        actor=actor,
    )


@router.post("/referrals/{campaign_id}/poster-image")
def upload_poster_image(
    request: Request, session: DbSession, actor: CurrentActor, campaign_id: int, form: Form
) -> Response:
    """Use the uploaded image as the posters' background; "clear" goes back to the colours."""
    actor.require(Permission.WRITE)
    upload = form.get("image")
    try:
        if _field(form, "clear") == "1":
            image = None
        elif isinstance(upload, StarletteUpload):
            image = upload.file.read(MAX_BACKGROUND_BYTES + 1)
            if not image:
                raise ValidationFailed("choose an image to upload", where="image", hint="a PNG or JPEG")
        else:
            raise ValidationFailed("choose an image to upload", where="image", hint="a PNG or JPEG")
        with session.begin_nested():
            service.set_poster_image(session, actor=actor, campaign_id=campaign_id, image=image)
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/referrals/{campaign_id}?saved=1", status_code=303)


@router.post("/referrals/invites/{invite_id}/review")
def review(request: Request, session: DbSession, actor: CurrentActor, invite_id: int, form: Form) -> Response:
    actor.require(Permission.WRITE)
    try:
        invite = service.review(session, actor=actor, invite_id=invite_id, decision=_field(form, "decision"))
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/referrals/{invite.campaign_id}#review", status_code=303)
