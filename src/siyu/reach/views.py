"""Pages of reach: the outbox viewer (what each customer received), dead letters with requeue, and the
public one-click unsubscribe page that marketing email links to."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from siyu.auth.service import Permission
from siyu.reach import service
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render

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
