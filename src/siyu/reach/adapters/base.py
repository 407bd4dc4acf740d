"""The interfaces channel adapters implement, and what a send can come to.

An adapter turns one `OutboundMessage` (address resolved from the customer's identities, the content for
its channel) into one provider call. A `BatchAdapter` takes the messages of one claim for its channel at
once, for providers that send to many recipients in one call (WeCom's mass messages). Neither touches the
database: the worker resolves what they need into the message (`route`) and records the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class OutboundMessage:
    """What a worker hands an adapter: the message, addressed, with its channel's content."""

    message_id: int
    workspace_id: int
    customer_id: int
    channel: str
    address: str
    purpose: str
    content: dict[str, Any]
    idempotency_key: str  # the same on every attempt: providers (and the webhook receiver) dedup by it
    attempt: int = 1
    # what the outbox resolved for the provider beyond the address, e.g. {"sender": "<WeCom userid>"}
    route: dict[str, str] = field(default_factory=dict)


class Outcome(StrEnum):
    SENT = "sent"  # accepted by the provider
    RETRY = "retry"  # a transient failure (timeout, 429, 5xx, 4xx greylisting): try again later
    FAILED = "failed"  # a permanent failure: retrying cannot help


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None
    # the address itself is bad (a hard bounce): the gateway blocks it for this channel
    address_rejected: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    # when the provider's own deadline calls for it (a welcome code lives 20 s), how long to wait before
    # the next attempt instead of the worker's exponential backoff
    retry_after_seconds: float | None = None

    @classmethod
    def sent(cls, provider_message_id: str) -> SendResult:
        return cls(Outcome.SENT, provider_message_id=provider_message_id)

    @classmethod
    def retry(cls, error: str, *, after_seconds: float | None = None) -> SendResult:
        return cls(Outcome.RETRY, error=error, retry_after_seconds=after_seconds)

    @classmethod
    def failed(cls, error: str, *, address_rejected: bool = False) -> SendResult:
        return cls(Outcome.FAILED, error=error, address_rejected=address_rejected)


@runtime_checkable
class Adapter(Protocol):
    """A channel adapter: `kind` names the provider ("smtp", "webhook", "log", later "sms-…", "wecom")."""

    kind: str

    def send(self, message: OutboundMessage) -> SendResult:
        """Make one provider call for `message`; never raises for a provider's error (returns it)."""
        ...


@runtime_checkable
class BatchAdapter(Protocol):
    """An adapter whose provider sends many messages in one call. The worker claims up to `max_batch`
    due messages of its channel at once and hands them over together; it answers one result per message,
    in the same order."""

    kind: str
    max_batch: int

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Make the provider calls for `messages`; never raises for a provider's error (returns it)."""
        ...
