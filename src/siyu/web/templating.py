"""Jinja2 set-up of the pages: translation `t()`, money from cents, times in the workspace zone, CSRF.

Every page is rendered through `render()`, which fills in the language, the actor and their workspaces.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from siyu.auth import service as auth
from siyu.auth.service import Actor
from siyu.core.errors import SiyuError
from siyu.core.timeutil import to_zone
from siyu.web import i18n
from siyu.web.deps import csrf_token
from siyu.workspaces import service as workspaces

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_ZONE = "Asia/Shanghai"
_CURRENCY_SIGNS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "JPY": "¥"}

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def money(cents: int | None, currency: str = "CNY") -> str:
    """Integer cents as the UI shows money: 123450 → "¥1,234.50"; negative amounts keep their sign."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(int(cents)), 100)
    return f"{sign}{_CURRENCY_SIGNS.get(currency.upper(), currency.upper() + ' ')}{whole:,}.{fraction:02d}"


def yuan(cents: int | None) -> str:
    """Cents as a plain decimal for charts and form fields: 123450 → "1234.50"."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{fraction:02d}"


def format_time(value: datetime | date | None, zone: str = DEFAULT_ZONE, with_time: bool = True) -> str:
    """A stored UTC time in the workspace zone, "2026-03-01 14:05"; dates pass through."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        local = to_zone(value, zone) if value.tzinfo else value
        return local.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
    return value.isoformat()


def _workspace_choices(session: Session, actor: Actor) -> list[dict[str, Any]]:
    choices = []
    for membership in auth.memberships_of(session, user_id=actor.user_id):
        workspace = workspaces.get_workspace(session, workspace_id=membership.workspace_id)
        choices.append(
            {"id": workspace.id, "name": workspace.name, "current": workspace.id == actor.workspace_id}
        )
    return choices


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    session: Session | None = None,
    actor: Actor | None = None,
    status_code: int = 200,
) -> Response:
    """Render template `name`; with a session and an actor the header shows their workspace and switcher."""
    lang = i18n.language_of(request)
    zone = DEFAULT_ZONE
    workspace_name = ""
    workspace_choices: list[dict[str, Any]] = []
    currency = "CNY"
    if session is not None and actor is not None:
        workspace = workspaces.get_workspace(session, workspace_id=actor.workspace_id)
        zone, workspace_name, currency = workspace.timezone, workspace.name, workspace.currency
        workspace_choices = _workspace_choices(session, actor)

    def t(key: str, **values: object) -> str:
        return i18n.translate(key, lang, **values)

    def label(prefix: str, value: object) -> str:
        """A stored code in words (status, gender, source type); an unknown code shows as stored."""
        key = f"{prefix}.{value}"
        return i18n.translate(key, lang) if i18n.has_message(key) else str(value)

    page: dict[str, Any] = {
        "label": label,
        "lang": lang,
        "languages": i18n.LANGUAGES,
        "t": t,
        "actor": actor,
        "zone": zone,
        "currency": currency,
        "workspace_name": workspace_name,
        "workspace_choices": workspace_choices,
        "csrf_token": csrf_token(request),
        "money": lambda cents, cur=None: money(cents, cur or currency),
        "yuan": yuan,
        "when": lambda value, with_time=True: format_time(value, zone, with_time),
        "path": request.url.path,
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    page.update(context or {})
    return templates.TemplateResponse(request, name, page, status_code=status_code)


def render_error(
    request: Request, error: SiyuError, *, session: Session | None = None, actor: Actor | None = None
) -> Response:
    """A page for an error a user can act on, with its HTTP status (404 for records they may not see)."""
    return render(
        request, "error.html", {"error": error}, session=session, actor=actor, status_code=error.status_code
    )


def csv_download(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """Rows as a CSV attachment, UTF-8 with a BOM so that Excel shows Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
