"""Pages of the web shell: log in and out, the language switch, the workspace switcher, `/`.

Each domain's own pages live in its `views.py`; this module holds only what belongs to no domain.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from siyu.auth import service as auth
from siyu.core.errors import PermissionDenied, Unauthorized
from siyu.web import i18n
from siyu.web.deps import CurrentActor, DbSession, csrf_token
from siyu.web.templating import render

router = APIRouter(include_in_schema=False)

ONE_YEAR = 365 * 24 * 3600


def safe_next(target: str | None, default: str = "/overview") -> str:
    """A redirect target on this site only (no scheme, no host, no `//evil`): open redirects are refused."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def _check_form_csrf(request: Request, submitted: str) -> None:
    expected = request.session.get("csrf")
    if not submitted or not expected or not hmac.compare_digest(submitted, str(expected)):
        raise PermissionDenied("missing or wrong CSRF token", hint="reload the page and submit again")


@router.get("/")
def home() -> Response:
    return RedirectResponse("/overview", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    csrf_token(request)
    return render(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/overview",
) -> Response:
    # a login form posted from another site would log the victim into the attacker's account
    _check_form_csrf(request, csrf_token)
    try:
        user = auth.authenticate(session, email=email, password=password)
    except Unauthorized:
        return render(
            request,
            "login.html",
            {"next": safe_next(next), "error": "login.failed", "email": email},
            status_code=401,
        )
    memberships = auth.memberships_of(session, user_id=user.id)
    if not memberships:
        return render(
            request,
            "login.html",
            {"next": safe_next(next), "error": "login.no_workspace", "email": email},
            status_code=403,
        )
    csrf = request.session.get("csrf")
    request.session.clear()  # a new session on login: no fixation of a session made before
    request.session.update({"user_id": user.id, "workspace_id": memberships[0].workspace_id, "csrf": csrf})
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, actor: CurrentActor) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{code}")
def switch_language(code: str, request: Request, next: str | None = None) -> Response:
    """Remember the chosen language in a cookie and go back to the page it was chosen on."""
    response = RedirectResponse(safe_next(next), status_code=303)
    language = i18n.normalize(code)
    if language:
        response.set_cookie(i18n.LANG_COOKIE, language, max_age=ONE_YEAR, samesite="lax")
    return response


@router.post("/workspace")
def switch_workspace(
    request: Request, session: DbSession, actor: CurrentActor, workspace_id: Annotated[int, Form()]
) -> Response:
    """Act in another workspace the user belongs to (refused for any other)."""
    auth.actor_for(session, user_id=actor.user_id, workspace_id=workspace_id)
    request.session["workspace_id"] = workspace_id
    return RedirectResponse("/overview", status_code=303)
