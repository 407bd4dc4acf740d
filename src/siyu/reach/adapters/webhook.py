"""Webhook: each message as a JSON POST signed with HMAC-SHA256, so a brand can plug in any channel.

Headers: `X-Siyu-Timestamp` (unix seconds), `X-Siyu-Signature` (hex HMAC-SHA256 of "{timestamp}." + raw
body with the shared secret: the scheme of siyu's inbound webhooks), and `Idempotency-Key`, the same on
every attempt of one message: a receiver must treat a repeated key as the same message. 2xx is
accepted (a JSON `id` in the reply becomes the provider message id); 408, 425, 429 and 5xx and network
errors retry; any other status is a permanent failure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx

from siyu.reach.adapters.base import OutboundMessage, SendResult

TIMESTAMP_HEADER = "X-Siyu-Timestamp"
SIGNATURE_HEADER = "X-Siyu-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def sign(*, secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature of one delivery: hex HMAC-SHA256 of "{timestamp}." + body."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def body_of(message: OutboundMessage) -> bytes:
    return json.dumps(
        {
            "message_id": message.message_id,
            "idempotency_key": message.idempotency_key,
            "workspace_id": message.workspace_id,
            "customer_id": message.customer_id,
            "channel": message.channel,
            "address": message.address,
            "purpose": message.purpose,
            "content": message.content,
            "attempt": message.attempt,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class WebhookAdapter:
    kind = "webhook"

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a webhook adapter needs a signing secret (SIYU_REACH_WEBHOOK_SECRET)")
        self.url = url
        self.secret = secret
        self.clock = clock
        self.client = httpx.Client(timeout=timeout_seconds, transport=transport)

    def send(self, message: OutboundMessage) -> SendResult:
        body = body_of(message)
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret=self.secret, timestamp=timestamp, body=body),
            IDEMPOTENCY_HEADER: message.idempotency_key,
        }
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult.retry(f"POST {self.url} failed: {type(exc).__name__}: {exc}")
        text = response.text[:500]
        if response.is_success:
            provider_id = message.idempotency_key
            try:
                reply = response.json()
                if isinstance(reply, dict) and reply.get("id"):
                    provider_id = str(reply["id"])
            except ValueError:
                pass
            return SendResult.sent(provider_id)
        error = f"POST {self.url} answered {response.status_code}: {text}"
        if response.status_code in RETRYABLE_STATUSES or response.status_code >= 500:
            return SendResult.retry(error)
        return SendResult.failed(error)

    def close(self) -> None:
        self.client.close()
