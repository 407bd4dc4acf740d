"""Signed inbound webhooks: a shop system pushes orders, events or customers, signed with the workspace secret.

The scheme
----------
Each delivery is a POST to `/api/hooks/{workspace_slug}/{orders|events|customers}` with two headers:

- `X-Siyu-Timestamp`: the time of sending, in unix seconds;
- `X-Siyu-Signature`: `sha256=` followed by the lower-case hex HMAC-SHA256, keyed with the workspace's
  webhook secret, of the timestamp, a dot, and the raw request body: `f"{timestamp}.{body}"`.

A delivery is refused (401, saying which) when a header is missing, the timestamp is further than
`SIYU_WEBHOOK_TOLERANCE_SECONDS` (default 300) from the server's clock (a replayed old delivery), or the
signature does not match. Signing the timestamp with the body is what makes a replay detectable.

Worked example — secret `whsec_example`, timestamp `1700000000`, body (exact bytes, no trailing newline)::

    {"records":[{"external_id":"A1001","phone":"13912345678","paid_cents":3200,"placed_at":"2023-11-14T22:13:20Z"}]}

The signed text is `1700000000.` followed by that body, and the header is::

    X-Siyu-Signature: sha256=b2f813a7eff8009c44c1ea8dc725783c9276581f6f575bb8e2a476ff4b5c82a6

From a shell: `printf '%s' "$TS.$BODY" | openssl dgst -sha256 -hmac "$SECRET"`.

Deliveries are idempotent: orders are keyed by their external id and events by theirs (or a hash of their
content), so a retried delivery changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from sqlalchemy.orm import Session

from siyu.core.errors import Unauthorized
from siyu.workspaces import service as workspaces

TIMESTAMP_HEADER = "X-Siyu-Timestamp"
SIGNATURE_HEADER = "X-Siyu-Signature"
SCHEME = "sha256="


def sign(*, secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Siyu-Signature` value for a body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify(
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    tolerance_seconds: int,
    now: float | None = None,
) -> None:
    """Return if the delivery is authentic and fresh, else raise Unauthorized saying what was wrong."""
    if not timestamp:
        raise Unauthorized(
            f"missing {TIMESTAMP_HEADER} header", where=TIMESTAMP_HEADER, hint="send the unix time of sending"
        )
    if not signature:
        raise Unauthorized(
            f"missing {SIGNATURE_HEADER} header",
            where=SIGNATURE_HEADER,
            hint='send "sha256=" + hex HMAC-SHA256 of "{timestamp}.{body}" keyed with the webhook secret',
        )
    try:
        sent_at = int(timestamp.strip())
    except ValueError:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} {timestamp!r} is not unix seconds", where=TIMESTAMP_HEADER
        ) from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        raise Unauthorized(
            f"stale delivery: {TIMESTAMP_HEADER} is {int(current - sent_at)} s away from the server's clock "
            f"(at most {tolerance_seconds} s allowed)",
            where=TIMESTAMP_HEADER,
            hint="sign each delivery (and each retry) with the current time; check the sender's clock",
        )
    expected = sign(secret=secret, timestamp=timestamp.strip(), body=body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise Unauthorized(
            "wrong signature",
            where=SIGNATURE_HEADER,
            hint='sign "{timestamp}.{raw body}" with HMAC-SHA256 and this workspace\'s webhook secret, '
            'hex-encoded after "sha256="',
        )


def verify_delivery(
    session: Session,
    *,
    workspace_slug: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    tolerance_seconds: int,
    now: float | None = None,
) -> int:
    """The id of the workspace a delivery is for, once its signature checks out (else Unauthorized)."""
    workspace = workspaces.get_workspace_by_slug(session, slug=workspace_slug)
    verify(
        secret=workspace.webhook_secret,
        timestamp=timestamp,
        signature=signature,
        body=body,
        tolerance_seconds=tolerance_seconds,
        now=now,
    )
    return workspace.id
