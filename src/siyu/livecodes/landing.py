"""The public landing page of a live code, `/l/{token}`: no login; rate-limited per client address;
an unknown, malformed or disabled token all get the same 404, so codes cannot be enumerated, and the
page never shows anything about customers.

Where no WeCom is connected (development and test deployments), the page offers a clearly labelled
demo action that simulates the scanner adding the staff member on WeCom, through the same
`attribution.record_add` the WeCom callback calls.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.core.config import Settings, get_settings
from siyu.core.errors import NotFound, SiyuError
from siyu.livecodes import attribution, qr, scans, service
from siyu.web.deps import DbSession, get_database, rate_limits
from siyu.web.templating import render

router = APIRouter(include_in_schema=False)
MAX_USER_AGENT = 512
# per client address: a scanner is a person with a phone, so a few dozen visits a minute from one
# address is already a script (core.ratelimit; names overridable in SIYU_RATE_LIMITS)
RATES = {"landing": "30/minute", "demo_add": "10/minute"}


def demo_adds_allowed(settings: Settings) -> bool:
    """Simulated adds exist only where no real WeCom callback can be (never in production)."""
    return settings.env in ("development", "test")


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many(request: Request, retry_after: int) -> Response:
    response = render(request, "livecodes/landing_error.html", {"kind": "rate"}, status_code=429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _missing(request: Request) -> Response:
    return render(request, "livecodes/landing_error.html", {"kind": "missing"}, status_code=404)


def _signature(token: str, scan_id: int) -> str:
    """Binds the demo form to the scan it was shown for, so that it cannot name other scans."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"demo-add\x1f{token}\x1f{scan_id}".encode(), hashlib.sha256).hexdigest()[:32]


def _contact_image(result: scans.ScanResult) -> str:
    """The staff member's WeCom contact QR, or for a demo a generated stand-in (a data URI)."""
    if result.contact_qr_url:
        return result.contact_qr_url
    stand_in = qr.svg(f"siyu-demo-contact:{result.state}:{result.staff_user_id}", size="screen")
    return "data:image/svg+xml;base64," + base64.b64encode(stand_in).decode()


def _limited(request: Request, name: str) -> Response | None:
    verdict = rate_limits(request).hit(f"livecode.{name}", RATES[name], _client_ip(request))
    return None if verdict.allowed else _too_many(request, verdict.retry_after_seconds)


@router.get("/l/{token}")
def landing(request: Request, token: str) -> Response:
    """A scan: hand the visitor to a staff member and show their contact QR."""
    refused = _limited(request, "landing")
    if refused is not None:
        return refused
    try:
        # a GET that writes: its own write transaction, not the request's read-only session, so that the
        # row lock on the code holds until the scan is stored (PostgreSQL runs reads in autocommit)
        with get_database(request).transaction() as session:
            result = scans.scan(
                session,
                token=token,
                client_ip=_client_ip(request),
                user_agent=request.headers.get("user-agent", "")[:MAX_USER_AGENT],
            )
    except NotFound:
        return _missing(request)
    settings: Settings = request.app.state.settings
    return render(
        request,
        "livecodes/landing.html",
        {
            "result": result,
            "token": token,
            "contact_image": _contact_image(result) if result.staff_user_id is not None else None,
            "demo": demo_adds_allowed(settings) and result.staff_user_id is not None,
            "signature": _signature(token, result.scan_id),
        },
    )


def _demo_staff_userid(session: Session, *, workspace_id: int, user_id: int) -> str:
    for m in auth.list_members(session, workspace_id=workspace_id):
        if m.user_id == user_id and m.wecom_userid:
            return m.wecom_userid
    return f"siyu-user-{user_id}"


@router.post("/l/{token}/demo-add")
def demo_add(
    request: Request,
    token: str,
    session: DbSession,
    scan_id: Annotated[str, Form(max_length=20)] = "",
    signature: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Simulate the scanner adding the staff member on WeCom (development and test only)."""
    refused = _limited(request, "demo_add")
    if refused is not None:
        return refused
    settings: Settings = request.app.state.settings
    if not demo_adds_allowed(settings) or not scan_id.isdigit() or len(scan_id) > 18:
        return _missing(request)
    if not hmac.compare_digest(signature, _signature(token, int(scan_id))):
        return _missing(request)
    try:
        code = scans.active_code_by_token(session, token=token)
        scan = scans.get_scan(session, live_code_id=code.id, scan_id=int(scan_id))
        if scan.staff_user_id is None:
            raise NotFound(service.NOT_FOUND_MESSAGE)
        with session.begin_nested():
            added = attribution.record_add(
                session,
                workspace_id=code.workspace_id,
                state=code.state,
                external_userid=f"demo-{secrets.token_hex(8)}",
                staff_userid=_demo_staff_userid(
                    session, workspace_id=code.workspace_id, user_id=scan.staff_user_id
                ),
                staff_user_id=scan.staff_user_id,
            )
    except NotFound:
        return _missing(request)
    except SiyuError:  # pragma: no cover - record_add validates only what this route generated
        return _missing(request)
    staff_name = ""
    for m in auth.list_members(session, workspace_id=code.workspace_id):
        if m.user_id == scan.staff_user_id:
            staff_name = m.display_name
    return render(
        request,
        "livecodes/landing_added.html",
        {"code_name": code.name, "staff_name": staff_name, "welcome_text": added.add.welcome_text},
    )
