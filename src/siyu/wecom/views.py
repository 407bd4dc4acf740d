"""The WeCom settings page (企微设置): corp id, secret, callback token and EncodingAESKey, the callback
URL to enter in WeCom, and what has arrived so far. Saving needs `manage`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core.errors import SiyuError
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render
from siyu.wecom import moment_views
from siyu.wecom import service as wecom

router = APIRouter(include_in_schema=False)
router.routes.extend(moment_views.router.routes)  # moments (朋友圈): /moments (the app copies routes)


def _page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    error: SiyuError | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    settings = wecom.view_settings(session, actor=actor)
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "wecom/settings.html",
        {
            "settings": settings,
            "callback_url": base + settings.callback_path if settings else None,
            "counts": wecom.overview(session, workspace_id=actor.workspace_id),
            "staff": wecom.list_staff(session, workspace_id=actor.workspace_id),
            "error": error,
            "form": form or {},
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        actor=actor,
        status_code=status_code,
    )


@router.get("/wecom")
def settings_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.MANAGE)
    return _page(request, session, actor)


@router.post("/wecom")
def save_settings(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    corp_id: Annotated[str, Form()],
    token: Annotated[str, Form()],
    encoding_aes_key: Annotated[str, Form()],
    secret: Annotated[str, Form()] = "",
    agent_id: Annotated[str, Form()] = "",
) -> Response:
    actor.require(Permission.MANAGE)
    try:
        with session.begin_nested():  # a savepoint: a refused form leaves the page's session usable
            wecom.save_settings(
                session,
                actor=actor,
                corp_id=corp_id,
                token=token,
                encoding_aes_key=encoding_aes_key,
                secret=secret or None,
                agent_id=agent_id or None,
            )
    except SiyuError as error:
        # the secret is never sent back into the page, not even a refused one
        form = {
            "corp_id": corp_id,
            "token": token,
            "encoding_aes_key": encoding_aes_key,
            "agent_id": agent_id,
        }
        return _page(request, session, actor, error=error, form=form, status_code=error.status_code)
    return RedirectResponse("/wecom?saved=1", status_code=303)
