"""The public referral landing `/r/{token}`: no login; rate-limited per client address; an unknown,
malformed or closed link all get the same 404, and every accepted phone gets the same thank-you page —
whether the friend was new, already a customer or held for review — so neither links nor customers
can be enumerated."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from siyu.core.config import get_settings
from siyu.core.errors import NotFound, ValidationFailed
from siyu.referrals import service
from siyu.web.deps import DbSession, rate_limits
from siyu.web.templating import render

router = APIRouter(include_in_schema=False)
LANDING_RATE = "30/minute"  # visits per client address
JOIN_RATE = "10/minute"  # phone submissions per client address
MAX_USER_AGENT = 512
MAX_PHONE = 40  # longer is no phone number, whatever it holds


def client_hash(ip: str, user_agent: str) -> str:
    """A keyed hash of the client (address and browser): equal for one client, no raw PII kept."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"referral\x1f{ip}\x1f{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refused(request: Request, name: str) -> Response | None:
    rate = {"landing": LANDING_RATE, "join": JOIN_RATE}[name]
    verdict = rate_limits(request).hit(f"referral.{name}", rate, _ip(request))
    if verdict.allowed:
        return None
    response = render(request, "referrals/landing_error.html", {"kind": "rate"}, status_code=429)
    response.headers["Retry-After"] = str(verdict.retry_after_seconds)
    return response


def _missing(request: Request) -> Response:
    return render(request, "referrals/landing_error.html", {"kind": "missing"}, status_code=404)


def _page(
    request: Request, session: DbSession, token: str, *, error: str | None = None, status: int = 200
) -> Response:
    link = service.link_by_token(session, token=token)
    if link is None:
        return _missing(request)
    campaign = service.get_campaign(session, workspace_id=link.workspace_id, campaign_id=link.campaign_id)
    if not service.is_running(campaign):
        return _missing(request)
    inviter = service.inviter_first_name(session, link=link)
    return render(
        request,
        "referrals/landing.html",
        {"title": campaign.title, "inviter": inviter, "token": token, "error": error},
        status_code=status,
    )


@router.get("/r/{token}")
def landing(request: Request, token: str, session: DbSession) -> Response:
    """The invite: the campaign's title, who invites, and the form for the friend's phone."""
    refused = _refused(request, "landing")
    if refused is not None:
        return refused
    return _page(request, session, token)


@router.post("/r/{token}")
def join(
    request: Request, token: str, session: DbSession, phone: Annotated[str, Form(max_length=4000)] = ""
) -> Response:
    """The friend leaves their phone: they become (or are found as) a customer and the invite is kept."""
    refused = _refused(request, "join")
    if refused is not None:
        return refused
    link = service.link_by_token(session, token=token)
    if link is None:
        return _missing(request)
    if len(phone) > MAX_PHONE:
        return _page(request, session, token, error="phone", status=422)
    try:
        with session.begin_nested():  # a savepoint: a refused phone leaves nothing behind
            service.record_invite(
                session,
                link=link,
                phone=phone,
                client_hash=client_hash(_ip(request), request.headers.get("user-agent", "")[:MAX_USER_AGENT]),
            )
    except ValidationFailed:
        return _page(request, session, token, error="phone", status=422)
    except (NotFound, service.CampaignClosed):
        return _missing(request)
    return render(request, "referrals/landing_done.html", {})
