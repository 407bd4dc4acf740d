"""JSON routes for tags: groups and tags (reading needs `read`, defining and tagging need `write`)."""

from __future__ import annotations

from fastapi import APIRouter

from siyu.auth.service import Actor, Permission
from siyu.tags import service
from siyu.tags.schemas import BulkTagIn, BulkTagResult, CustomerTagOut, TagGroupIn, TagGroupOut, TagIn, TagOut
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api", tags=["tags"])


@router.get("/tag-groups", response_model=list[TagGroupOut])
def list_groups(session: DbSession, actor: Actor = require(Permission.READ)) -> list[TagGroupOut]:
    return service.list_groups(session, workspace_id=actor.workspace_id)


@router.post("/tag-groups", response_model=TagGroupOut, status_code=201)
def create_group(
    body: TagGroupIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> TagGroupOut:
    group = service.create_group(session, actor=actor, name=body.name)
    return TagGroupOut(id=group.id, name=group.name, created_at=group.created_at, tags=[])


@router.post("/tag-groups/{group_id}/tags", response_model=TagOut, status_code=201)
def create_tag(
    group_id: int, body: TagIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> TagOut:
    return TagOut.model_validate(service.create_tag(session, actor=actor, group_id=group_id, name=body.name))


@router.get("/customers/{customer_id}/tags", response_model=list[CustomerTagOut])
def customer_tags(
    customer_id: int, session: DbSession, actor: Actor = require(Permission.READ)
) -> list[CustomerTagOut]:
    return service.customer_tags(session, actor=actor, customer_id=customer_id)


@router.put("/customers/{customer_id}/tags/{tag_id}", response_model=list[CustomerTagOut])
def tag_customer(
    customer_id: int, tag_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> list[CustomerTagOut]:
    """Give the customer this tag (by hand); answers with the customer's tags."""
    service.tag_customer(session, actor=actor, customer_id=customer_id, tag_id=tag_id)
    return service.customer_tags(session, actor=actor, customer_id=customer_id)


@router.delete("/customers/{customer_id}/tags/{tag_id}", response_model=list[CustomerTagOut])
def untag_customer(
    customer_id: int, tag_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> list[CustomerTagOut]:
    service.untag_customer(session, actor=actor, customer_id=customer_id, tag_id=tag_id)
    return service.customer_tags(session, actor=actor, customer_id=customer_id)


@router.post("/tags/{tag_id}/customers", response_model=BulkTagResult)
def tag_many(
    tag_id: int, body: BulkTagIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> BulkTagResult:
    """Tag many customers: by `customer_ids`, or by an imported list (`identity_kind` + `values`)."""
    if body.customer_ids is not None:
        return service.tag_customers(session, actor=actor, tag_id=tag_id, customer_ids=body.customer_ids)
    assert body.identity_kind is not None and body.values is not None
    return service.tag_customers_by_identity(
        session, actor=actor, tag_id=tag_id, kind=body.identity_kind, values=body.values
    )


@router.post("/tags/{tag_id}/customers/remove", response_model=BulkTagResult)
def untag_many(
    tag_id: int, body: BulkTagIn, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> BulkTagResult:
    """Take the tag off many customers, named as for tagging."""
    if body.customer_ids is not None:
        return service.untag_customers(session, actor=actor, tag_id=tag_id, customer_ids=body.customer_ids)
    assert body.identity_kind is not None and body.values is not None
    return service.untag_customers_by_identity(
        session, actor=actor, tag_id=tag_id, kind=body.identity_kind, values=body.values
    )
