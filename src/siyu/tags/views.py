"""The tag management page (标签): groups and tags with how many customers carry each and from which
source, create / rename / delete (a deletion is confirmed on a page that says how many customers lose
the tag), and bulk tagging or untagging of a segment, a selection of ids or an uploaded list.

Writes run in the request's transaction and redirect (post/redirect/get); a refused form shows the page
again with the reason, inside a savepoint so nothing of it is written.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from siyu.auth.service import Actor, Permission
from siyu.core.errors import SiyuError, ValidationFailed
from siyu.segments import service as segments
from siyu.tags import service
from siyu.tags.schemas import IdentityListResult, RowReject
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render

router = APIRouter(include_in_schema=False)
LIST_KINDS = ("phone", "wecom_external_userid", "shop_member_id", "wechat_openid", "email")
_IDS = re.compile(r"[\s,，;；]+")


def _number(text: str, *, where: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise ValidationFailed(f"{text[:40]!r} is not a whole number", where=where)
    return int(text)


def _page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    error: SiyuError | None = None,
    result: IdentityListResult | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    groups = service.list_groups(session, workspace_id=actor.workspace_id)
    counts = service.tag_counts(session, actor=actor)
    named = segments.references_by_tag(session, workspace_id=actor.workspace_id)
    return render(
        request,
        "tags/index.html",
        {
            "groups": groups,
            "counts": counts,
            "named": named,
            "segments": segments.list_segments(session, workspace_id=actor.workspace_id),
            "kinds": LIST_KINDS,
            "error": error,
            "result": result,
            "notice": notice or request.query_params.get("notice"),
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


@router.get("/tags")
def tags_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    return _page(request, session, actor)


def _write(request: Request, session: Session, actor: Actor, action: Any) -> Response:
    """Run one form's write in a savepoint; the page again with the reason if it is refused."""
    try:
        with session.begin_nested():
            action()
    except SiyuError as error:
        return _page(request, session, actor, error=error, status_code=error.status_code)
    return RedirectResponse("/tags?notice=saved", status_code=303)


@router.post("/tag-groups")
def create_group(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    return _write(
        request,
        session,
        actor,
        lambda: service.create_group(session, actor=actor, name=form_text(form, "name")),
    )


@router.post("/tag-groups/{group_id}/tags")
def create_tag(
    request: Request, session: DbSession, actor: CurrentActor, group_id: int, form: Form
) -> Response:
    return _write(
        request,
        session,
        actor,
        lambda: service.create_tag(session, actor=actor, group_id=group_id, name=form_text(form, "name")),
    )


@router.post("/tag-groups/{group_id}/rename")
def rename_group(
    request: Request, session: DbSession, actor: CurrentActor, group_id: int, form: Form
) -> Response:
    def rename() -> None:
        ids = service.tag_ids_of_group(session, workspace_id=actor.workspace_id, group_id=group_id)
        named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=ids)
        service.rename_group(
            session, actor=actor, group_id=group_id, name=form_text(form, "name"), named_by=named_by
        )

    return _write(request, session, actor, rename)


@router.post("/tags/{tag_id}/rename")
def rename_tag(
    request: Request, session: DbSession, actor: CurrentActor, tag_id: int, form: Form
) -> Response:
    def rename() -> None:
        named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=[tag_id])
        service.rename_tag(
            session, actor=actor, tag_id=tag_id, name=form_text(form, "name"), named_by=named_by
        )

    return _write(request, session, actor, rename)


def _confirm(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    kind: str,
    target: Any,
    tag_ids: list[int],
    tags: int = 1,
) -> Response:
    if kind == "tag":
        customers = service.carriers_count(session, actor=actor, tag_id=target.id)
    else:
        customers = service.carriers_count(session, actor=actor, group_id=target.id)
    return render(
        request,
        "tags/confirm.html",
        {
            "kind": kind,
            "target": target,
            "customers": customers,
            "tags": tags,
            "named_by": segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=tag_ids),
        },
        session=session,
        actor=actor,
    )


@router.get("/tags/{tag_id}/delete")
def confirm_delete_tag(request: Request, session: DbSession, actor: CurrentActor, tag_id: int) -> Response:
    actor.require(Permission.MANAGE)
    tag = service.get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    return _confirm(request, session, actor, kind="tag", target=tag, tag_ids=[tag.id])


@router.get("/tag-groups/{group_id}/delete")
def confirm_delete_group(
    request: Request, session: DbSession, actor: CurrentActor, group_id: int
) -> Response:
    actor.require(Permission.MANAGE)
    group = service.get_group(session, workspace_id=actor.workspace_id, group_id=group_id)
    ids = service.tag_ids_of_group(session, workspace_id=actor.workspace_id, group_id=group_id)
    return _confirm(request, session, actor, kind="group", target=group, tag_ids=ids, tags=len(ids))


@router.post("/tags/{tag_id}/delete")
def delete_tag(
    request: Request, session: DbSession, actor: CurrentActor, tag_id: int, form: Form
) -> Response:
    removed: list[int] = []

    def drop() -> None:
        named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=[tag_id])
        expected = _number(form_text(form, "expected_customers"), where="expected_customers")
        removed.append(
            service.delete_tag(
                session, actor=actor, tag_id=tag_id, expected_customers=expected, named_by=named_by
            )
        )

    response = _write(request, session, actor, drop)
    return RedirectResponse(f"/tags?deleted={removed[0]}", status_code=303) if removed else response


@router.post("/tag-groups/{group_id}/delete")
def delete_group(
    request: Request, session: DbSession, actor: CurrentActor, group_id: int, form: Form
) -> Response:
    removed: list[int] = []

    def drop() -> None:
        ids = service.tag_ids_of_group(session, workspace_id=actor.workspace_id, group_id=group_id)
        named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=ids)
        expected = _number(form_text(form, "expected_customers"), where="expected_customers")
        removed.append(
            service.delete_group(
                session, actor=actor, group_id=group_id, expected_customers=expected, named_by=named_by
            )
        )

    response = _write(request, session, actor, drop)
    return RedirectResponse(f"/tags?deleted={removed[0]}", status_code=303) if removed else response


@router.post("/tags/bulk")
def bulk(request: Request, session: DbSession, actor: CurrentActor, form: Form) -> Response:
    """Tag or untag a segment's members, customer ids, or an uploaded list; the page shows the outcome
    with every row of the list that was not applied."""
    upload = form.get("file")
    content = upload.file.read() if isinstance(upload, UploadFile) else b""
    filename = upload.filename if isinstance(upload, UploadFile) else None
    remove = form_text(form, "action") == "remove"
    target = form_text(form, "target")
    try:
        with session.begin_nested():
            tag_id = _number(form_text(form, "tag_id"), where="tag_id")
            if target == "segment":
                segment_id = _number(form_text(form, "segment_id"), where="segment_id")
                segment = segments.get_segment(
                    session, workspace_id=actor.workspace_id, segment_id=segment_id
                )
                if remove:
                    done = segments.untag_members(session, actor=actor, rule=segment.rule, tag_id=tag_id)
                else:
                    done = segments.tag_members(
                        session,
                        actor=actor,
                        rule=segment.rule,
                        tag_id=tag_id,
                        source_ref=f"segment:{segment.id}",
                    )
                result = IdentityListResult(
                    result=done, kind="segment", rows=done.changed + done.unchanged, rejects=[]
                )
            elif target == "ids":
                ids = [
                    _number(part, where="customer_ids")
                    for part in _IDS.split(form_text(form, "customer_ids"))
                    if part
                ]
                if not ids:
                    raise ValidationFailed(
                        "no customer ids given", where="customer_ids", hint="e.g. 12, 15, 31"
                    )
                verb_ids = service.untag_customers if remove else service.tag_customers
                done = verb_ids(session, actor=actor, tag_id=tag_id, customer_ids=ids)
                rejects = [
                    RowReject(row=i, value=v, code="not_found", reason="names no customer you may see")
                    for i, v in enumerate(done.not_found, start=1)
                ]
                result = IdentityListResult(result=done, kind="id", rows=len(set(ids)), rejects=rejects)
            elif target == "file":
                if not content:
                    raise ValidationFailed("no file was uploaded", where="file", hint="choose a CSV file")
                result = service.tag_customers_by_list(
                    session,
                    actor=actor,
                    tag_id=tag_id,
                    kind=form_text(form, "kind") or "phone",
                    content=content,
                    filename=filename,
                    remove=remove,
                )
            else:
                raise ValidationFailed(
                    f"unknown target {target!r}", where="target", hint="segment, ids or file"
                )
    except SiyuError as error:
        return _page(request, session, actor, error=error, status_code=error.status_code)
    return _page(request, session, actor, result=result)
