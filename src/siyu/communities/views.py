"""Community pages: the groups with their figures and the period's activity (chart, by owner, CSV) and a
sync button, one group's page (members matched to the pool, growth chart, members' orders against
non-members', tags, join QR upload, CSV of each chart), group live codes (create, list, detail with QR),
and the public landing `/g/{token}` that hands out the current group's join QR.

Writes run in the request's transaction and redirect (post/redirect/get); a refused form is shown
again with the reason, inside a savepoint so nothing of it is written.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from siyu.auth.service import Actor, Permission
from siyu.communities import codes, post_views, service, stats
from siyu.communities.schemas import ActivityFigures, GroupCodeIn
from siyu.core.errors import NotFound, SiyuError, ValidationFailed
from siyu.web.deps import CurrentActor, DbSession, get_database, rate_limits
from siyu.web.forms import Form, form_text
from siyu.web.templating import csv_download, render, render_error

router = APIRouter(include_in_schema=False)
router.routes.extend(post_views.router.routes)  # group posts (群SOP): /group-posts (the app copies routes)
LANDING_RATE = "30/minute"
CHARTS = ("growth", "orders", "members")


def _date(text: str | None, *, where: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{text[:20]!r} is not a date", where=where, hint="YYYY-MM-DD") from None


def _period(request: Request, session: Session, actor: Actor) -> tuple[date, date]:
    query = request.query_params
    return stats.period(
        session,
        workspace_id=actor.workspace_id,
        start=_date(query.get("start"), where="start"),
        end=_date(query.get("end"), where="end"),
    )


@router.get("/communities")
def list_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    try:
        start, end = _period(request, session, actor)
        groups = stats.group_summaries(session, workspace_id=actor.workspace_id, start=start, end=end)
        activity = stats.activity(session, workspace_id=actor.workspace_id, start=start, end=end)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "communities/list.html",
        {
            "groups": groups,
            "activity": activity,
            "activity_chart": {
                "days": [d.day.isoformat() for d in activity.days],
                "messages": [d.messages for d in activity.days],
                "group_share": [_percent(d.group_share) for d in activity.days],
                "member_share": [_percent(d.member_share) for d in activity.days],
            },
            "start": start,
            "end": end,
            "synced": request.query_params.get("synced"),
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
    )


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def _ratio(share: float | None) -> str:
    return "" if share is None else f"{share:.4f}"


@router.get("/communities/activity.csv")
def activity_csv(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    """The list page's activity as CSV over its period: `by` = day (the chart) or owner (the table)."""
    actor.require(Permission.READ)
    by = request.query_params.get("by", "day")
    try:
        if by not in ("day", "owner"):
            raise ValidationFailed(
                f"{by[:20]!r} is not a breakdown of activity", where="by", hint="day, owner"
            )
        start, end = _period(request, session, actor)
        found = stats.activity(session, workspace_id=actor.workspace_id, start=start, end=end)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    keyed: list[tuple[str, ActivityFigures]] = (
        [(d.day.isoformat(), d) for d in found.days] if by == "day" else [(o.owner, o) for o in found.owners]
    )
    header = [by, "messages", "groups", "groups_with_messages", "group_share", "members"]
    header += ["members_who_spoke", "member_share"]
    rows = [
        (
            key,
            f.messages,
            f.groups,
            f.groups_with_messages,
            _ratio(f.group_share),
            f.members,
            f.members_who_spoke,
            _ratio(f.member_share),
        )
        for key, f in keyed
    ]
    return csv_download(f"community-activity-{by}-{start.isoformat()}-{end.isoformat()}.csv", header, rows)


@router.post("/communities/sync")
def sync(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.WRITE)
    try:
        with session.begin_nested():
            result = service.sync(session, actor=actor)
    except SiyuError as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/communities?synced={result.seen}", status_code=303)


def _group_or_error(request: Request, session: Session, actor: Actor, chat_id: str) -> Response | None:
    try:
        service.get_group(session, workspace_id=actor.workspace_id, chat_id=chat_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return None


def _group_page(
    request: Request, session: Session, actor: Actor, chat_id: str, *, error: SiyuError | None = None
) -> Response:
    start, end = _period(request, session, actor)
    detail = stats.group_detail(
        session, workspace_id=actor.workspace_id, chat_id=chat_id, start=start, end=end
    )
    chart = {
        "days": [d.day.isoformat() for d in detail.growth],
        "joins": [d.joins for d in detail.growth],
        "leaves": [-d.leaves for d in detail.growth],
        "members": [d.members for d in detail.growth],
    }
    return render(
        request,
        "communities/group.html",
        {
            "group": detail.summary,
            "detail": detail,
            "chart": chart,
            "members": service.members_of(session, workspace_id=actor.workspace_id, chat_id=chat_id),
            "start": start,
            "end": end,
            "error": error,
            "saved": request.query_params.get("saved") == "1",
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
        status_code=error.status_code if error else 200,
    )


@router.get("/communities/groups/{chat_id}")
def group_page(request: Request, session: DbSession, actor: CurrentActor, chat_id: str) -> Response:
    actor.require(Permission.READ)
    missing = _group_or_error(request, session, actor, chat_id)
    if missing is not None:
        return missing
    try:
        return _group_page(request, session, actor, chat_id)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)


@router.get("/communities/groups/{chat_id}/data.csv")
def group_csv(request: Request, session: DbSession, actor: CurrentActor, chat_id: str) -> Response:
    """One chart of the group page as CSV: `chart` = growth, orders or members, over the page's period."""
    actor.require(Permission.READ)
    missing = _group_or_error(request, session, actor, chat_id)
    if missing is not None:
        return missing
    chart = request.query_params.get("chart", "")
    try:
        if chart not in CHARTS:
            raise ValidationFailed(
                f"{chart[:20]!r} is not a chart of this page", where="chart", hint=", ".join(CHARTS)
            )
        start, end = _period(request, session, actor)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    ws = actor.workspace_id
    name = f"group-{chat_id[:24]}-{chart}-{start.isoformat()}-{end.isoformat()}.csv"
    if chart == "growth":
        days = stats.growth(session, workspace_id=ws, chat_id=chat_id, start=start, end=end)
        return csv_download(
            name,
            ["day", "joins", "leaves", "net", "members"],
            [(d.day, d.joins, d.leaves, d.net, d.members) for d in days],
        )
    if chart == "orders":
        figures = stats.member_orders(session, workspace_id=ws, chat_id=chat_id, start=start, end=end)
        rows: list[tuple[Any, ...]] = [
            (
                cohort,
                f.customers,
                f.buyers,
                f.orders,
                f.gmv_cents,
                "" if f.repurchase_rate is None else f"{f.repurchase_rate:.4f}",
            )
            for cohort, f in (("members", figures.members), ("non_members", figures.non_members))
        ]
        return csv_download(
            name, ["cohort", "customers", "buyers", "orders", "gmv_cents", "repurchase_rate"], rows
        )
    people = service.members_of(session, workspace_id=ws, chat_id=chat_id)
    return csv_download(
        name,
        ["member_id", "member_type", "joined_at", "join_scene", "customer_id"],
        [
            (m.member_id, m.member_type, m.joined_at.isoformat(), m.join_scene or "", m.customer_id or "")
            for m in people
        ],
    )


@router.post("/communities/groups/{chat_id}/tags")
def add_tag(request: Request, session: DbSession, actor: CurrentActor, chat_id: str, form: Form) -> Response:
    actor.require(Permission.WRITE)
    missing = _group_or_error(request, session, actor, chat_id)
    if missing is not None:
        return missing
    try:
        with session.begin_nested():
            service.add_tag(session, actor=actor, chat_id=chat_id, name=form_text(form, "name"))
    except SiyuError as error:
        return _group_page(request, session, actor, chat_id, error=error)
    return RedirectResponse(f"/communities/groups/{chat_id}?saved=1#tags", status_code=303)


@router.post("/communities/groups/{chat_id}/tags/remove")
def remove_tag(
    request: Request, session: DbSession, actor: CurrentActor, chat_id: str, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    missing = _group_or_error(request, session, actor, chat_id)
    if missing is not None:
        return missing
    service.remove_tag(session, actor=actor, chat_id=chat_id, name=form_text(form, "name"))
    return RedirectResponse(f"/communities/groups/{chat_id}#tags", status_code=303)


@router.post("/communities/groups/{chat_id}/qr")
def upload_qr(
    request: Request, session: DbSession, actor: CurrentActor, chat_id: str, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    missing = _group_or_error(request, session, actor, chat_id)
    if missing is not None:
        return missing
    upload = form.get("image")
    try:
        image = upload.file.read(service.MAX_QR_BYTES + 1) if isinstance(upload, UploadFile) else b""
        expires_text = form_text(form, "expires_at")
        expires_at = None
        if expires_text:
            try:
                expires_at = datetime.fromisoformat(expires_text)
            except ValueError:
                raise ValidationFailed(
                    f"{expires_text[:30]!r} is not a time", where="expires_at", hint="2026-12-08T12:00+08:00"
                ) from None
            if expires_at.tzinfo is None:
                expires_at = expires_at.replace(
                    tzinfo=ZoneInfo(stats.zone_of(session, workspace_id=actor.workspace_id))
                )
        with session.begin_nested():
            service.save_qr(session, actor=actor, chat_id=chat_id, image=image, expires_at=expires_at)
    except SiyuError as error:
        return _group_page(request, session, actor, chat_id, error=error)
    return RedirectResponse(f"/communities/groups/{chat_id}?saved=1", status_code=303)


@router.get("/communities/groups/{chat_id}/qr")
def group_qr(request: Request, session: DbSession, actor: CurrentActor, chat_id: str) -> Response:
    actor.require(Permission.READ)
    missing = _group_or_error(request, session, actor, chat_id)
    if missing is not None:
        return missing
    found = service.qr_of(session, workspace_id=actor.workspace_id, chat_id=chat_id)
    if found is None:
        return render_error(
            request, NotFound("this group has no join QR yet", where="chat_id"), session=session, actor=actor
        )
    return Response(
        found.image, media_type=found.content_type, headers={"Cache-Control": "private, max-age=60"}
    )


# --- group live codes ------------------------------------------------------------------------------


def _codes_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    values: dict[str, Any],
    error: SiyuError | None = None,
) -> Response:
    return render(
        request,
        "communities/codes.html",
        {
            "codes": [
                codes.describe(session, code=c)
                for c in codes.list_codes(session, workspace_id=actor.workspace_id)
            ],
            "groups": [
                g
                for g in service.list_groups(session, workspace_id=actor.workspace_id)
                if g.dismissed_at is None
            ],
            "v": values,
            "error": error,
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
        status_code=error.status_code if error else 200,
    )


@router.get("/communities/codes")
def codes_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return _codes_page(request, session, actor, values={"cap": codes.DEFAULT_CAP, "chat_ids": []})


@router.post("/communities/codes")
def create_code(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    actor.require(Permission.WRITE)
    chat_ids = [v for v in form.getlist("chat_ids") if isinstance(v, str) and v]
    values = {"name": form_text(form, "name"), "cap": form_text(form, "cap"), "chat_ids": chat_ids}
    try:
        cap_text = form_text(form, "cap") or str(codes.DEFAULT_CAP)
        if not cap_text.isdigit() or len(cap_text) > 6:
            raise ValidationFailed(f"{cap_text[:20]!r} is not a whole number", where="cap")
        with session.begin_nested():
            code = codes.create_code(
                session,
                actor=actor,
                spec=GroupCodeIn(name=form_text(form, "name"), chat_ids=chat_ids[:100], cap=int(cap_text)),
            )
    except SiyuError as error:
        return _codes_page(request, session, actor, values=values, error=error)
    return RedirectResponse(f"/communities/codes/{code.id}?saved=1", status_code=303)


@router.get("/communities/codes/{code_id}")
def code_page(request: Request, session: DbSession, actor: CurrentActor, code_id: int) -> Response:
    actor.require(Permission.READ)
    try:
        code = codes.get_code(session, workspace_id=actor.workspace_id, code_id=code_id)
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "communities/code.html",
        {
            "code": codes.describe(session, code=code),
            "landing_url": codes.landing_url(str(request.base_url), code),
            "saved": request.query_params.get("saved") == "1",
            "can_write": actor.can(Permission.WRITE),
        },
        session=session,
        actor=actor,
    )


@router.post("/communities/codes/{code_id}/active")
def toggle_code(
    request: Request, session: DbSession, actor: CurrentActor, code_id: int, form: Form
) -> Response:
    actor.require(Permission.WRITE)
    try:
        codes.set_active(session, actor=actor, code_id=code_id, active=form_text(form, "active") == "1")
    except NotFound as error:
        return render_error(request, error, session=session, actor=actor)
    return RedirectResponse(f"/communities/codes/{code_id}", status_code=303)


# --- the public landing ----------------------------------------------------------------------------


@router.get("/g/{token}")
def landing(request: Request, token: str) -> Response:
    """A visit of a group code: the join QR of the current group (rate-limited per client address;
    an unknown, malformed or disabled token all get the same 404)."""
    address = request.client.host if request.client else "unknown"
    verdict = rate_limits(request).hit("group_code.landing", LANDING_RATE, address)
    if not verdict.allowed:
        response = render(request, "communities/landing.html", {"kind": "rate"}, status_code=429)
        response.headers["Retry-After"] = str(verdict.retry_after_seconds)
        return response
    try:
        # a GET that writes: its own write transaction, so the row lock on the code holds until the
        # hand-out is counted (PostgreSQL runs a GET's reads in autocommit)
        with get_database(request).transaction() as session:
            result, found = codes.hand_out(session, token=token)
            image = (
                f"data:{found.content_type};base64," + base64.b64encode(found.image).decode()
                if found is not None
                else None
            )
    except NotFound:
        return render(request, "communities/landing.html", {"kind": "missing"}, status_code=404)
    return render(
        request,
        "communities/landing.html",
        {"kind": "group" if image else "full", "group_name": result.group_name, "image": image},
    )
