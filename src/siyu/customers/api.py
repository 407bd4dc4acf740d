"""JSON routes for customers: search and lookup, the 360 view, profile/owner/consent, merges, PIPL."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from siyu.auth.service import Actor, Permission
from siyu.core.errors import ValidationFailed
from siyu.customers import identity, privacy, service
from siyu.customers.schemas import (
    ConsentIn,
    ConsentState,
    Customer360,
    CustomerFilter,
    CustomerPage,
    CustomerProfile,
    CustomerSummary,
    ErasureOut,
    MergeIn,
    MergeOut,
    OwnerIn,
    ProfileUpdate,
    ReviewDecision,
    ReviewOut,
    TimelinePage,
)
from siyu.web.deps import DbSession, require, run_short_read

router = APIRouter(prefix="/api", tags=["customers"])


@router.get("/customers", response_model=CustomerPage)
def search_customers(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    q: Annotated[
        str | None, Query(description="Phone (any spelling), identity value or part of a name.")
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    channel_id: int | None = None,
    owner_user_id: int | None = None,
    city: str | None = None,
    has_identity_kind: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    last_order_from: datetime | None = None,
    last_order_to: datetime | None = None,
    min_orders: Annotated[int | None, Query(ge=0)] = None,
) -> CustomerPage:
    filters = CustomerFilter(
        channel_id=channel_id,
        owner_user_id=owner_user_id,
        city=city,
        has_identity_kind=has_identity_kind,
        created_from=created_from,
        created_to=created_to,
        last_order_from=last_order_from,
        last_order_to=last_order_to,
        min_orders=min_orders,
    )
    return service.search_customers(
        session, actor=actor, query=q, filters=filters, cursor=cursor, limit=limit
    )


_LIST_COLUMNS = [
    "id",
    "name",
    "gender",
    "city",
    "phone",
    "owner_user_id",
    "first_channel_id",
    "created_at",
    "order_count",
    "net_revenue_cents",
    "last_order_at",
]


@router.post(
    "/customers/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with a BOM (opens in Excel)."}},
)
def export_customers(
    session: DbSession,
    actor: Actor = require(Permission.EXPORT),
    q: str | None = None,
    filters: Annotated[CustomerFilter | None, Body()] = None,
) -> Response:
    """Download the customers a search finds as CSV (audited)."""
    rows = service.export_customer_list(session, actor=actor, query=q, filters=filters)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_LIST_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(row.model_dump(mode="json", include=set(_LIST_COLUMNS)))
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )


@router.get("/customers/lookup", response_model=CustomerSummary)
async def lookup_customer(
    request: Request,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    phone: str | None = None,
    kind: str | None = None,
    value: str | None = None,
) -> CustomerSummary:
    """The customer holding `?phone=` or `?kind=&value=` (the fast path for shop systems and tills)."""
    if phone:
        kind, value = "phone", phone
    if not kind or not value:
        raise ValidationFailed("pass ?phone= or both ?kind= and ?value=", where="query")
    # the hot path of shop systems and tills: one indexed read, without a thread hand-off on SQLite
    return await run_short_read(
        request, service.lookup_by_identity, session, actor=actor, kind=kind, value=value
    )


@router.get("/customers/{customer_id}", response_model=Customer360)
def get_customer(
    customer_id: int,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    timeline_cursor: str | None = None,
    timeline_limit: Annotated[int, Query(ge=1, le=200)] = 30,
) -> Customer360:
    return service.get_customer_360(
        session,
        actor=actor,
        customer_id=customer_id,
        timeline_cursor=timeline_cursor,
        timeline_limit=timeline_limit,
    )


@router.get("/customers/{customer_id}/timeline", response_model=TimelinePage)
def customer_timeline(
    customer_id: int,
    session: DbSession,
    actor: Actor = require(Permission.READ),
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 30,
) -> TimelinePage:
    items, next_cursor = service.customer_timeline(
        session, actor=actor, customer_id=customer_id, cursor=cursor, limit=limit
    )
    return TimelinePage(items=items, next_cursor=next_cursor)


@router.patch("/customers/{customer_id}", response_model=CustomerProfile)
def update_profile(
    customer_id: int, body: ProfileUpdate, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> CustomerProfile:
    customer = service.update_profile(session, actor=actor, customer_id=customer_id, changes=body)
    return CustomerProfile.model_validate(customer)


@router.put("/customers/{customer_id}/owner", response_model=CustomerProfile)
def assign_owner(
    customer_id: int, body: OwnerIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> CustomerProfile:
    customer = service.assign_owner(
        session, actor=actor, customer_id=customer_id, owner_user_id=body.owner_user_id
    )
    return CustomerProfile.model_validate(customer)


@router.post("/customers/{customer_id}/consents", response_model=ConsentState, status_code=201)
def record_consent(
    customer_id: int, body: ConsentIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> ConsentState:
    return service.record_consent(
        session,
        actor=actor,
        customer_id=customer_id,
        contact_channel=body.contact_channel,
        purpose=body.purpose,
        status=body.status,
        source=body.source,
        occurred_at=body.occurred_at,
    )


@router.post("/customers/{customer_id}/export", response_model=dict[str, Any], tags=["pipl"])
def export_person(
    customer_id: int, session: DbSession, actor: Actor = require(Permission.EXPORT)
) -> dict[str, Any]:
    """PIPL: everything held about this person, as JSON (audited)."""
    return privacy.export_person(session, actor=actor, customer_id=customer_id)


@router.post("/customers/{customer_id}/erase", response_model=ErasureOut, tags=["pipl"])
def erase_person(
    customer_id: int, session: DbSession, actor: Actor = require(Permission.ERASE)
) -> ErasureOut:
    """PIPL: erase this person; their orders stay, anonymous (audited)."""
    counts = privacy.erase_person(session, actor=actor, customer_id=customer_id)
    return ErasureOut(customer_id=customer_id, **counts)


@router.post("/customers/{customer_id}/merge", response_model=MergeOut, status_code=201, tags=["identity"])
def merge_customers(
    customer_id: int, body: MergeIn, session: DbSession, actor: Actor = require(Permission.MERGE)
) -> MergeOut:
    """Merge customer `merged_id` into this one (audited; undo with /api/merges/{id}/undo)."""
    service.ensure_visible(session, actor=actor, customer_id=customer_id)
    log = identity.merge_customers(
        session,
        workspace_id=actor.workspace_id,
        survivor_id=customer_id,
        merged_id=body.merged_id,
        reason=body.reason,
        actor_user_id=actor.user_id,
    )
    return MergeOut.model_validate(log)


@router.get("/merges", response_model=list[MergeOut], tags=["identity"])
def list_merges(
    session: DbSession, actor: Actor = require(Permission.READ), customer_id: int | None = None
) -> list[MergeOut]:
    logs = identity.list_merges(session, workspace_id=actor.workspace_id, customer_id=customer_id)
    return [MergeOut.model_validate(log) for log in logs]


@router.post("/merges/{merge_log_id}/undo", response_model=MergeOut, tags=["identity"])
def unmerge(merge_log_id: int, session: DbSession, actor: Actor = require(Permission.MERGE)) -> MergeOut:
    log = identity.unmerge(
        session, workspace_id=actor.workspace_id, merge_log_id=merge_log_id, actor_user_id=actor.user_id
    )
    return MergeOut.model_validate(log)


@router.get("/identity-reviews", response_model=list[ReviewOut], tags=["identity"])
def list_reviews(
    session: DbSession,
    actor: Actor = require(Permission.READ),
    status: Annotated[
        str | None, Query(description="open (default), merged, dismissed; empty for all")
    ] = "open",
) -> list[ReviewOut]:
    reviews = identity.list_reviews(session, workspace_id=actor.workspace_id, status=status or None)
    return [ReviewOut.model_validate(r) for r in reviews]


@router.post("/identity-reviews/{review_id}/resolve", response_model=ReviewOut, tags=["identity"])
def resolve_review(
    review_id: int, body: ReviewDecision, session: DbSession, actor: Actor = require(Permission.MERGE)
) -> ReviewOut:
    review = identity.resolve_review(
        session,
        workspace_id=actor.workspace_id,
        review_id=review_id,
        decision=body.decision,
        actor_user_id=actor.user_id,
    )
    return ReviewOut.model_validate(review)
