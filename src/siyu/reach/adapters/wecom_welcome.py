"""WeCom welcome messages (欢迎语) over channel "wecom_welcome": one `send_welcome_msg` per message, with
the welcome code of the add it answers, within WeCom's 20 seconds of the add.

The welcome code is kept on the friend relation (wecom_follow) and is used up by the send, so the call
and that record go together: the registry gives this adapter `send_welcome`, which runs
`wecom.service.send_welcome` in a transaction of its own; this module reads no table. Refusals no retry
can change — no welcome code, the window passed, sent already, not a friend, WeCom refusing the code —
fail the message with the reason; WeCom's passing errors and the network retry after `retry_seconds`,
while the window lasts (past it, the next attempt fails with "the welcome window has passed").
"""

from __future__ import annotations

from collections.abc import Callable

from siyu.core.errors import Conflict, NotFound, SiyuError
from siyu.reach.adapters.base import OutboundMessage, SendResult
from siyu.wecom.client import WecomApiError

# send_welcome_msg errcodes a retry cannot mend: invalid or used welcome code, not the customer's friend
WELCOME_REFUSALS = frozenset({41051, 84061})


class WecomWelcomeAdapter:
    """Sends channel "wecom_welcome": `send_welcome(message)` makes the call (raising WeCom's or siyu's
    error); the content names the staff member (`sender`) whose add the welcome answers."""

    kind = "wecom-welcome"

    def __init__(
        self, *, send_welcome: Callable[[OutboundMessage], None], retry_seconds: float = 1.0
    ) -> None:
        self.send_welcome = send_welcome
        # a welcome code lives 20 s: the worker's backoff (30 s and up) would always come too late
        self.retry_seconds = retry_seconds

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            self.send_welcome(message)
        except WecomApiError as exc:
            if exc.errcode in WELCOME_REFUSALS:
                return SendResult.failed(str(exc))
            return SendResult.retry(str(exc), after_seconds=self.retry_seconds)
        except (Conflict, NotFound) as exc:  # no welcome code, window passed, sent already, no friend
            return SendResult.failed(str(exc))
        except SiyuError as exc:  # WeCom not set up, an empty message: nothing changes within 20 s
            return SendResult.failed(str(exc))
        except OSError as exc:
            return SendResult.retry(f"network: {exc}", after_seconds=self.retry_seconds)
        return SendResult.sent(f"welcome:{message.idempotency_key}")
