"""The channels page: every channel with its costs per period; forms to add a channel and a cost.

Writes run in a transaction of their own and redirect back (post/redirect/get); a refused form is shown
again with the reason.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.channels import service as channels
from siyu.channels.models import SourceType
from siyu.core.errors import SiyuError, ValidationFailed
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render

router = APIRouter(include_in_schema=False)


def parse_yuan(text: str, *, where: str) -> int:
    """A typed amount in yuan ("1,234.5", "¥800") as integer cents; more than 2 decimals is refused."""
    cleaned = text.strip().replace(",", "").replace("¥", "").replace("￥", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValidationFailed(
            f"{text!r} is not an amount", where=where, hint="type yuan with up to 2 decimals, e.g. 1200.50"
        ) from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed(
            f"{text!r} has more than 2 decimals", where=where, hint="amounts are kept to the fen (0.01)"
        )
    return int(amount * 100)


def parse_day(text: str, *, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a date", where=where, hint="use YYYY-MM-DD") from None


def _page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    error: SiyuError | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    channel_list = channels.list_channels(session, workspace_id=actor.workspace_id)
    costs: dict[int, list[Any]] = {c.id: [] for c in channel_list}
    for cost in channels.list_costs(session, workspace_id=actor.workspace_id):
        costs.setdefault(cost.channel_id, []).append(cost)
    return render(
        request,
        "channels/index.html",
        {
            "channels": channel_list,
            "costs": costs,
            "source_types": [s.value for s in SourceType],
            "can_manage": actor.can(Permission.MANAGE),
            "error": error,
            "form": form or {},
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


@router.get("/channels")
def channel_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return _page(request, session, actor)


@router.post("/channels")
def add_channel(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    key: Annotated[str, Form()],
    name: Annotated[str, Form()],
    source_type: Annotated[str, Form()],
    aliases: Annotated[str, Form()] = "",
) -> Response:
    actor.require(Permission.MANAGE)
    try:
        with session.begin_nested():  # a savepoint: a refused write leaves the page's session usable
            channels.create_channel(
                session,
                workspace_id=actor.workspace_id,
                key=key,
                name=name,
                source_type=source_type,
                aliases=[a for a in aliases.split("|") if a.strip()],
                actor_user_id=actor.user_id,
            )
    except SiyuError as error:
        form = {"key": key, "name": name, "source_type": source_type, "aliases": aliases}
        return _page(request, session, actor, error=error, form=form, status_code=error.status_code)
    return RedirectResponse("/channels?saved=1", status_code=303)


@router.post("/channels/{channel_id}/costs")
def add_cost(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    channel_id: int,
    period_start: Annotated[str, Form()],
    period_end: Annotated[str, Form()],
    amount: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    actor.require(Permission.MANAGE)
    try:
        start = parse_day(period_start, where="period_start")
        end = parse_day(period_end, where="period_end")
        cents = parse_yuan(amount, where="amount")
        with session.begin_nested():  # a savepoint: a refused write leaves the page's session usable
            channels.add_cost(
                session,
                workspace_id=actor.workspace_id,
                channel_id=channel_id,
                period_start=start,
                period_end=end,
                amount_cents=cents,
                note=note,
                actor_user_id=actor.user_id,
            )
    except SiyuError as error:
        return _page(request, session, actor, error=error, status_code=error.status_code)
    return RedirectResponse(f"/channels?saved=1#channel-{channel_id}", status_code=303)
