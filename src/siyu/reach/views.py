"""Pages of reach: the outbox viewer (what each customer received), dead letters with requeue, a
member's page for writing to one customer (1:1), and the public one-click unsubscribe page that
marketing email links to."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.content import service as content_service
from siyu.content.models import SnippetKind
from siyu.core.errors import NotFound, PermissionDenied, SiyuError, ValidationFailed
from siyu.customers import service as customers
from siyu.reach import service
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.forms import Form, form_text
from siyu.web.templating import render, render_error

router = APIRouter(include_in_schema=False)


@router.get("/reach/outbox")
def outbox_page(
    request: Request, session: DbSession, actor: CurrentActor, customer_id: int | None = None
) -> Response:
    actor.require(Permission.READ)
    groups = service.received_by_customer(session, actor=actor, customer_id=customer_id)
    pending = service.list_messages(
        session, actor=actor, statuses=["queued", "deferred"], customer_id=customer_id, limit=20
    )
    return render(
        request,
        "reach/outbox.html",
        {"groups": groups, "pending": pending, "customer_id": customer_id},
        session=session,
        actor=actor,
    )


@router.get("/reach/dead-letters")
def dead_letters_page(
    request: Request, session: DbSession, actor: CurrentActor, requeued: int | None = None
) -> Response:
    actor.require(Permission.READ)
    letters = service.list_messages(session, actor=actor, statuses=["failed"], limit=200)
    return render(
        request,
        "reach/dead_letters.html",
        {"letters": letters, "requeued": requeued, "can_write": actor.can(Permission.WRITE)},
        session=session,
        actor=actor,
    )


@router.post("/reach/dead-letters/{message_id}/requeue")
def requeue_form(message_id: int, session: DbSession, actor: CurrentActor) -> Response:
    service.requeue(session, actor=actor, message_id=message_id)
    return RedirectResponse(f"/reach/dead-letters?requeued={message_id}", status_code=303)


@router.get("/reach/unsubscribe/{token}")
def unsubscribe_page(token: str, request: Request) -> Response:
    """Opening the link only asks: mail scanners follow links, and must not unsubscribe anyone."""
    service.read_unsubscribe_token(token)
    return render(request, "reach/unsubscribe.html", {"token": token, "done": False})


@router.post("/reach/unsubscribe/{token}")
def unsubscribe(token: str, request: Request, session: DbSession) -> Response:
    """RFC 8058 one-click: a mail client POSTs `List-Unsubscribe=One-Click` here; the page's button too."""
    service.unsubscribe(session, token=token)
    return render(request, "reach/unsubscribe.html", {"token": token, "done": True})


def _write_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    customer_id: int,
    values: dict[str, str],
    preview: Any = None,
    result: Any = None,
    repeated: bool = False,
    error: SiyuError | None = None,
) -> Response:
    purpose = (
        values["purpose"] if values.get("purpose") in ("transactional", "marketing") else "transactional"
    )
    options = service.channel_options(session, actor=actor, customer_id=customer_id, purpose=purpose)
    if values.get("channel") not in {o.channel for o in options if o.reachable}:
        values["channel"] = next((o.channel for o in options if o.reachable), "")
    return render(
        request,
        "reach/write.html",
        {
            "customer": customers.get_customer_summary(session, actor=actor, customer_id=customer_id),
            "purpose": purpose,
            "options": options,
            "v": values,
            "snippets": content_service.list_snippets(
                session, workspace_id=actor.workspace_id, kind=SnippetKind.TEXT
            ),
            "preview": preview,
            "result": result,
            "repeated": repeated,
            "error": error,
        },
        session=session,
        actor=actor,
        status_code=error.status_code if error else 200,
    )


@router.get("/customers/{customer_id}/message")
def write_page(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    customer_id: int,
    purpose: str = "transactional",
    result: int | None = None,
    repeated: bool = False,
) -> Response:
    """The page a member writes to one customer on; after a send it shows what the gateway decided."""
    try:
        service.ensure_may_write(session, actor=actor, customer_id=customer_id)
        outcome = service.get_message(session, actor=actor, message_id=result) if result else None
        if outcome is not None and outcome.customer_id != customer_id:
            raise NotFound(f"message {result} is not one to this customer", where="result")
    except (NotFound, PermissionDenied) as error:
        return render_error(request, error, session=session, actor=actor)
    # one token per rendering of the form: submitting it twice sends one message
    values = {"purpose": purpose, "form_token": secrets.token_urlsafe(12)}
    return _write_page(
        request, session, actor, customer_id=customer_id, values=values, result=outcome, repeated=repeated
    )


@router.post("/customers/{customer_id}/message")
def write_submit(
    request: Request, session: DbSession, actor: CurrentActor, customer_id: int, form: Form
) -> Response:
    """Preview the message for the customer, insert a snippet of the content library (话术库), or send
    it through the gateway (a double submit of one form sends once)."""
    values = {
        name: form_text(form, name)
        for name in ("purpose", "channel", "subject", "form_token", "snippet_id", "action")
    }
    values["text"] = str(form.get("text") or "")
    action = values["action"] or "preview"
    preview = None
    try:
        service.ensure_may_write(session, actor=actor, customer_id=customer_id)
    except (NotFound, PermissionDenied) as error:
        return render_error(request, error, session=session, actor=actor)
    try:
        if action == "send":
            key = service.form_key(actor=actor, form_token=values["form_token"])
            with session.begin_nested():
                sent = service.send_one(
                    session,
                    actor=actor,
                    customer_id=customer_id,
                    channel=values["channel"],
                    purpose=values["purpose"],
                    text=values["text"],
                    subject=values["subject"],
                    idempotency_key=key,
                )
            target = (
                f"/customers/{customer_id}/message?purpose={sent.message.purpose}&result={sent.message.id}"
            )
            return RedirectResponse(target + ("&repeated=true" if sent.repeated else ""), status_code=303)
        if action == "snippet":
            if not values["snippet_id"].isdigit():
                raise ValidationFailed("choose a snippet to insert", where="snippet_id")
            snippet = content_service.get_snippet(
                session, workspace_id=actor.workspace_id, snippet_id=int(values["snippet_id"])
            )
            values["text"] = (values["text"].rstrip() + "\n" + snippet.text).strip()
        else:
            preview = service.preview_message(
                session, actor=actor, customer_id=customer_id, channel=values["channel"],
                text=values["text"], subject=values["subject"],
            )  # fmt: skip
    except (ValidationFailed, NotFound) as error:  # a wrong field, a snippet gone: the form is kept
        return _write_page(request, session, actor, customer_id=customer_id, values=values, error=error)
    return _write_page(request, session, actor, customer_id=customer_id, values=values, preview=preview)
