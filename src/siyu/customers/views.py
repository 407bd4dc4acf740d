"""Customer pages: the list with search (phone, name, identity) and cursor paging, and the 360 page
(with the customer's reach history and the way to write to them).

Visibility is the service's: staff get "not found" for customers assigned to someone else.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.auth.service import Permission
from siyu.channels import service as channels
from siyu.core.errors import NotFound, ValidationFailed
from siyu.coupons import service as coupons
from siyu.customers import service as customers
from siyu.membership import service as membership
from siyu.reach import service as reach
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@router.get("/customers")
def customer_list(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    q: str | None = None,
    cursor: str | None = None,
) -> Response:
    try:
        page = customers.search_customers(session, actor=actor, query=q, cursor=cursor, limit=PAGE_SIZE)
    except ValidationFailed as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "customers/list.html",
        {"page": page, "q": q or "", "cursor": cursor},
        session=session,
        actor=actor,
    )


@router.get("/customers/{customer_id}")
def customer_360(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    customer_id: int,
    timeline_cursor: str | None = None,
) -> Response:
    try:
        view = customers.get_customer_360(
            session, actor=actor, customer_id=customer_id, timeline_cursor=timeline_cursor
        )
    except (NotFound, ValidationFailed) as error:
        return render_error(request, error, session=session, actor=actor)
    return render(
        request,
        "customers/detail.html",
        {
            "c": view,
            "channel_names": channels.channel_names(session, workspace_id=actor.workspace_id),
            "member": membership.member_view(session, actor=actor, customer_id=customer_id),
            "coupon_templates": coupons.active_templates(session, workspace_id=actor.workspace_id),
            # one key per rendering of the form: a double submit issues one coupon
            "issue_key": f"staff-form:{secrets.token_urlsafe(12)}",
            "reach_history": reach.list_messages(session, actor=actor, customer_id=customer_id, limit=20),
            "can_contact": actor.can(Permission.CONTACT),
        },
        session=session,
        actor=actor,
    )
