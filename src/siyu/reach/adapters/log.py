"""The outbox sink of the demo: accepts every message and sends nothing anywhere.

What each customer would have received stays readable in the outbox viewer (`/reach/outbox`).
"""

from __future__ import annotations

from siyu.reach.adapters.base import OutboundMessage, SendResult


class LogAdapter:
    kind = "log"

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult.sent(f"log-{message.message_id}")
