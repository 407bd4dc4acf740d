"""Live-code pages: the list with figures, the create/edit form (channel, placement, store, staff with
strategy, weights, schedules, caps and backups, auto tags, welcome text, cost), and the detail page
(QR preview and downloads, daily chart, per-staff table, attributed adds). The public landing page is
in landing.py and mounted with these routes.

Writes run in the request's transaction and redirect (post/redirect/get); a refused form is shown
again with the reason, inside a savepoint so nothing of it is written.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.channels import service as channels
from siyu.channels.models import SourceType
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.livecodes import attribution, landing, qr, service, stats, sync
from siyu.livecodes.assignment import Strategy
from siyu.livecodes.models import LiveCode
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.tags import service as tags
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error
from siyu.workspaces import service as workspaces

router = APIRouter(include_in_schema=False)
router.routes.extend(landing.router.routes)
CHART_DAYS = 30


def _int_or_none(text: str, *, where: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 12:
        raise ValidationFailed(f"{text[:40]!r} is not a whole number", where=where)
    return int(text)


def _cents(text: str, *, where: str) -> int:
    """An amount typed in yuan ("1,200.50", "¥800") as integer cents."""
    cleaned = text.replace(",", "").replace("¥", "").replace("￥", "").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")) or len(cleaned) > 16:
        raise ValidationFailed(
            f"{text[:40]!r} is not an amount", where=where, hint="yuan with up to 2 decimals"
        )
    return int(amount * 100)


def spec_from_form(form: FormData, member_ids: list[int]) -> LiveCodeIn:
    """The form's fields as the service's input; a malformed number is refused with its field."""
    staff = []
    for user_id in member_ids:
        if form_text(form, f"staff_{user_id}") != "on":
            continue
        staff.append(
            StaffIn(
                user_id=user_id,
                weight=_int_or_none(form_text(form, f"weight_{user_id}"), where=f"weight_{user_id}") or 1,
                daily_cap=_int_or_none(form_text(form, f"cap_{user_id}"), where=f"cap_{user_id}"),
                is_backup=form_text(form, f"backup_{user_id}") == "on",
                is_online=form_text(form, f"offline_{user_id}") != "on",
                weekdays=form_text(form, f"days_{user_id}") or "1234567",
                hours=form_text(form, f"hours_{user_id}") or None,
                contact_qr_url=form_text(form, f"qr_{user_id}") or None,
            )
        )
    strategy = form_text(form, "strategy") or Strategy.ROUND_ROBIN.value
    if strategy not in {s.value for s in Strategy}:
        raise ValidationFailed(f"{strategy[:40]!r} is not a strategy", where="strategy")
    cost = form_text(form, "cost")
    return LiveCodeIn(
        name=form_text(form, "name"),
        placement=form_text(form, "placement"),
        channel_id=_int_or_none(form_text(form, "channel_id"), where="channel_id"),
        store_id=_int_or_none(form_text(form, "store_id"), where="store_id"),
        strategy=Strategy(strategy),
        staff=staff,
        auto_tag_ids=[
            _int_or_none(v, where="auto_tag_ids") or 0
            for v in form.getlist("auto_tag_ids")
            if isinstance(v, str) and v
        ],
        welcome_text=form_text(form, "welcome_text"),
        cost_cents=_cents(cost, where="cost") if cost else 0,
        wecom_remark=form_text(form, "wecom_remark"),
        wecom_skip_verify=form_text(form, "wecom_skip_verify") == "on",
    )


def _form_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    code: LiveCode | None,
    values: dict[str, Any],
    error: SiyuError | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "livecodes/form.html",
        {
            "code": code,
            "v": values,
            "members": auth.list_members(session, workspace_id=actor.workspace_id),
            "channels": [
                c
                for c in channels.list_channels(session, workspace_id=actor.workspace_id)
                if c.source_type == SourceType.WECOM_LIVE_CODE
            ],
            "stores": channels.list_stores(session, workspace_id=actor.workspace_id),
            "tags": tags.tag_names(session, workspace_id=actor.workspace_id),
            "placements": [p.value for p in service.Placement],
            "strategies": [s.value for s in Strategy],
            "error": error,
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


def _values_of(session: Session, code: LiveCode) -> dict[str, Any]:
    return {
        "name": code.name,
        "placement": code.placement,
        "channel_id": code.channel_id,
        "store_id": code.store_id,
        "strategy": code.strategy,
        "auto_tag_ids": list(code.auto_tag_ids),
        "welcome_text": code.welcome_text,
        "cost": f"{code.cost_cents / 100:.2f}" if code.cost_cents else "",
        "wecom_remark": code.wecom_remark,
        "wecom_skip_verify": code.wecom_skip_verify,
        "staff": {
            s.user_id: {
                "weight": s.weight,
                "cap": s.daily_cap or "",
                "backup": s.is_backup,
                "offline": not s.is_online,
                "days": s.weekdays,
                "hours": service.hours_text(s) or "",
                "qr": s.contact_qr_url or "",
            }
            for s in service.staff_of(session, live_code_id=code.id)
        },
    }


def _values_from_form(form: FormData, member_ids: list[int]) -> dict[str, Any]:
    return {
        "name": form_text(form, "name"),
        "placement": form_text(form, "placement"),
        "channel_id": form_text(form, "channel_id"),
        "store_id": form_text(form, "store_id"),
        "strategy": form_text(form, "strategy"),
        "auto_tag_ids": [int(v) for v in form.getlist("auto_tag_ids") if isinstance(v, str) and v.isdigit()],
        "welcome_text": form_text(form, "welcome_text"),
        "cost": form_text(form, "cost"),
        "wecom_remark": form_text(form, "wecom_remark"),
        "wecom_skip_verify": form_text(form, "wecom_skip_verify") == "on",
        "staff": {
            uid: {
                "weight": form_text(form, f"weight_{uid}"),
                "cap": form_text(form, f"cap_{uid}"),
                "backup": form_text(form, f"backup_{uid}") == "on",
                "offline": form_text(form, f"offline_{uid}") == "on",
                "days": form_text(form, f"days_{uid}"),
                "hours": form_text(form, f"hours_{uid}"),
                "qr": form_text(form, f"qr_{uid}"),
            }
            for uid in member_ids
            if form_text(form, f"staff_{uid}") == "on"
        },
    }


@router.get("/live-codes")
def list_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    codes = service.list_live_codes(session, workspace_id=actor.workspace_id)
    return render(
        request,
        "livecodes/list.html",
        {
            "codes": codes,
            "figures": stats.totals_by_code(session, workspace_id=actor.workspace_id),
            "channel_names": channels.channel_names(session, workspace_id=actor.workspace_id),
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
    )


@router.get("/live-codes/new")
def new_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    return _form_page(request, session, actor, code=None, values={"strategy": "round_robin", "staff": {}})


@router.post("/live-codes")
def create(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    member_ids = [m.user_id for m in auth.list_members(session, workspace_id=actor.workspace_id)]
    try:
        spec = spec_from_form(form, member_ids)
        with session.begin_nested():  # a savepoint: a refused form leaves nothing behind
            code = service.create_live_code(session, actor=actor, spec=spec)
    except SiyuError as error:
        values = _values_from_form(form, member_ids)
        return _form_page(
            request, session, actor, code=None, values=values, error=error, status_code=error.status_code
        )
    return RedirectResponse(f"/live-codes/{code.id}?saved=1", status_code=303)


def _code_or_error(
    request: Request, session: Session, actor: Actor, live_code_id: int
) -> LiveCode | Response:
    try:
        return service.get_live_code(session, workspace_id=actor.workspace_id, live_code_id=live_code_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)


@router.get("/live-codes/{live_code_id}/edit")
def edit_page(request: Request, session: DbSession, actor: CurrentActor, live_code_id: int) -> Response:
    actor.require(Permission.WRITE)
    code = _code_or_error(request, session, actor, live_code_id)
    if isinstance(code, Response):
        return code
    return _form_page(request, session, actor, code=code, values=_values_of(session, code))


@router.post("/live-codes/{live_code_id}/edit")
def update(
    request: Request, session: DbSession, actor: CurrentActor, live_code_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    code = _code_or_error(request, session, actor, live_code_id)
    if isinstance(code, Response):
        return code
    member_ids = [m.user_id for m in auth.list_members(session, workspace_id=actor.workspace_id)]
    try:
        spec = spec_from_form(form, member_ids)
        with session.begin_nested():
            service.update_live_code(session, actor=actor, live_code_id=live_code_id, spec=spec)
    except SiyuError as error:
        values = _values_from_form(form, member_ids)
        return _form_page(
            request, session, actor, code=code, values=values, error=error, status_code=error.status_code
        )
    return RedirectResponse(f"/live-codes/{live_code_id}?saved=1", status_code=303)


@router.post("/live-codes/{live_code_id}/staff/{user_id}/online")
def toggle_online(
    request: Request, session: DbSession, actor: CurrentActor, live_code_id: int, user_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    try:
        service.set_staff_online(
            session,
            actor=actor,
            live_code_id=live_code_id,
            user_id=user_id,
            online=form_text(form, "online") == "1",
        )
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/live-codes/{live_code_id}#staff", status_code=303)


@router.post("/live-codes/{live_code_id}/active")
def toggle_active(
    request: Request, session: DbSession, actor: CurrentActor, live_code_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    try:
        service.set_active(
            session, actor=actor, live_code_id=live_code_id, active=form_text(form, "active") == "1"
        )
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/live-codes/{live_code_id}", status_code=303)


@router.post("/live-codes/{live_code_id}/wecom-sync")
def sync_now(
    request: Request, session: DbSession, actor: CurrentActor, live_code_id: int, form: Form
) -> Response:
    """Mark every staff member of the code for a push; the WeCom worker makes it on its next poll (no
    WeCom call inside this request's transaction)."""
    actor.require(Permission.WRITE)
    try:
        sync.request_sync(session, actor=actor, live_code_id=live_code_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/live-codes/{live_code_id}?sync=1#staff", status_code=303)


@router.get("/live-codes/{live_code_id}")
def detail_page(request: Request, session: DbSession, actor: CurrentActor, live_code_id: int) -> Response:
    actor.require(Permission.READ)
    code = _code_or_error(request, session, actor, live_code_id)
    if isinstance(code, Response):
        return code
    zone = workspaces.get_workspace(session, workspace_id=actor.workspace_id).timezone
    end = utcnow().astimezone(ZoneInfo(zone)).date()
    figures = stats.code_stats(
        session,
        workspace_id=actor.workspace_id,
        live_code_id=code.id,
        start=end - timedelta(days=CHART_DAYS - 1),
        end=end,
    )
    members = {m.user_id: m for m in auth.list_members(session, workspace_id=actor.workspace_id)}
    chart = {
        "days": [d.day.isoformat() for d in figures.days],
        "scans": [d.scans for d in figures.days],
        "new_adds": [d.new_adds for d in figures.days],
        "returning_adds": [d.returning_adds for d in figures.days],
        "deletions": [d.deletions for d in figures.days],
    }
    return render(
        request,
        "livecodes/detail.html",
        {
            "code": code,
            "landing_url": service.landing_url(str(request.base_url), code),
            "staff": service.staff_of(session, live_code_id=code.id),
            "members": members,
            "stats": figures,
            "chart": chart,
            "adds": attribution.adds_of(session, workspace_id=actor.workspace_id, live_code_id=code.id),
            "channel_names": channels.channel_names(session, workspace_id=actor.workspace_id),
            "store": channels.get_store(session, workspace_id=actor.workspace_id, store_id=code.store_id)
            if code.store_id
            else None,
            "tag_names": {
                tag_id: f"{group}/{name}"
                for tag_id, group, name in tags.tag_names(session, workspace_id=actor.workspace_id)
            },
            "sizes": list(qr.PRINT_SIZES.values()),
            "hours_text": service.hours_text,
            "sync_status": sync.status_of,
            "sync_requested": request.query_params.get("sync") == "1",
            "can_write": actor.can(Permission.WRITE),
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        actor=actor,
    )
