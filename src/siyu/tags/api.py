"""JSON routes for tags: groups and tags (reading needs `read`, defining, renaming and tagging need
`write`, deleting needs `manage`), counts per tag and source, and bulk tagging by ids, identities or an
uploaded CSV list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile

from siyu.auth.service import Actor, Permission
from siyu.segments import service as segments
from siyu.tags import service
from siyu.tags.schemas import (
    BulkTagIn,
    BulkTagResult,
    CustomerTagOut,
    IdentityListResult,
    TagCount,
    TagDeleted,
    TagGroupIn,
    TagGroupOut,
    TagImpact,
    TagIn,
    TagOut,
    TagRename,
)
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


ExpectedQuery = Annotated[
    int | None, Query(description="The number of customers the deletion was confirmed for (see …/impact).")
]


@router.get("/tags/counts", response_model=list[TagCount])
def tag_counts(session: DbSession, actor: Actor = require(Permission.READ)) -> list[TagCount]:
    """Per tag: the customers you may see who carry it, in all and by source (manual, rule, import…)."""
    return sorted(service.tag_counts(session, actor=actor).values(), key=lambda c: c.tag_id)


@router.get("/tags/{tag_id}/impact", response_model=TagImpact)
def tag_impact(tag_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> TagImpact:
    """What deleting the tag would do: how many customers carry it, which segments name it."""
    return TagImpact(
        customers=service.carriers_count(session, actor=actor, tag_id=tag_id),
        segments=segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=[tag_id]),
    )


@router.get("/tag-groups/{group_id}/impact", response_model=TagImpact)
def group_impact(group_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> TagImpact:
    """What deleting the group would do: customers carrying any of its tags, segments naming them."""
    ids = service.tag_ids_of_group(session, workspace_id=actor.workspace_id, group_id=group_id)
    return TagImpact(
        customers=service.carriers_count(session, actor=actor, group_id=group_id),
        segments=segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=ids),
    )


@router.patch("/tags/{tag_id}", response_model=TagOut)
def rename_tag(
    tag_id: int, body: TagRename, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> TagOut:
    named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=[tag_id])
    return TagOut.model_validate(
        service.rename_tag(session, actor=actor, tag_id=tag_id, name=body.name, named_by=named_by)
    )


@router.patch("/tag-groups/{group_id}", response_model=TagGroupOut)
def rename_group(
    group_id: int, body: TagRename, session: DbSession, actor: Actor = require(Permission.WRITE)
) -> TagGroupOut:
    ids = service.tag_ids_of_group(session, workspace_id=actor.workspace_id, group_id=group_id)
    named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=ids)
    group = service.rename_group(session, actor=actor, group_id=group_id, name=body.name, named_by=named_by)
    return next(g for g in service.list_groups(session, workspace_id=actor.workspace_id) if g.id == group.id)


@router.delete("/tags/{tag_id}", response_model=TagDeleted)
def delete_tag(
    tag_id: int,
    session: DbSession,
    actor: Actor = require(Permission.MANAGE),
    expected_customers: ExpectedQuery = None,
) -> TagDeleted:
    """Delete the tag: everyone carrying it loses it. With `expected_customers`, nothing is deleted if
    that is not how many carry it now."""
    named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=[tag_id])
    removed = service.delete_tag(
        session, actor=actor, tag_id=tag_id, expected_customers=expected_customers, named_by=named_by
    )
    return TagDeleted(customers=removed)


@router.delete("/tag-groups/{group_id}", response_model=TagDeleted)
def delete_group(
    group_id: int,
    session: DbSession,
    actor: Actor = require(Permission.MANAGE),
    expected_customers: ExpectedQuery = None,
) -> TagDeleted:
    """Delete the group and all its tags."""
    ids = service.tag_ids_of_group(session, workspace_id=actor.workspace_id, group_id=group_id)
    named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=ids)
    removed = service.delete_group(
        session, actor=actor, group_id=group_id, expected_customers=expected_customers, named_by=named_by
    )
    return TagDeleted(customers=removed)


@router.post("/tags/{tag_id}/customers/upload", response_model=IdentityListResult)
def tag_by_upload(
    tag_id: int,
    session: DbSession,
    file: Annotated[UploadFile, File(description="CSV: a header line, then one identity a line.")],
    kind: Annotated[str, Form(description="The identity kind of the list: phone, wecom_external_userid…")],
    remove: Annotated[bool, Form(description="Take the tag off instead.")] = False,
    actor: Actor = require(Permission.WRITE),
) -> IdentityListResult:
    """Tag (or untag) the customers an uploaded CSV names; rows naming nobody come back with their
    row numbers."""
    content = file.file.read()
    return service.tag_customers_by_list(
        session, actor=actor, tag_id=tag_id, kind=kind, content=content, filename=file.filename, remove=remove
    )
