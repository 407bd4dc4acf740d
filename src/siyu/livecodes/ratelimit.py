"""Rate limits of the public landing page, per client address, in process memory (limits' moving
window): a scanner is a person with a phone, so a few dozen visits a minute from one address is
already a script. Behind several server processes each keeps its own window."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import parse, storage, strategies

LANDING_RATE = "30/minute"  # visits of landing pages per client address
DEMO_ADD_RATE = "10/minute"  # simulated adds per client address


@dataclass
class Verdict:
    allowed: bool
    retry_after_seconds: int


class ClientLimiter:
    """Named limits (`"30/minute"`) counted per key (a hashed client address)."""

    def __init__(self, **rates: str) -> None:
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._rates = {name: parse(rate) for name, rate in rates.items()}

    def hit(self, name: str, key: str) -> Verdict:
        rate = self._rates[name]
        if self._limiter.hit(rate, name, key):
            return Verdict(True, 0)
        reset = self._limiter.get_window_stats(rate, name, key).reset_time
        return Verdict(False, max(1, math.ceil(reset - time.time())))


def default_limiter() -> ClientLimiter:
    return ClientLimiter(landing=LANDING_RATE, demo_add=DEMO_ADD_RATE)
