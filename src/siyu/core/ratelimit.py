"""Rate limits of the public endpoints (live-code, referral and group-code landings, short links, the
coupon check): moving windows counted by the `limits` library per name and key (a keyed hash of the
client, a workspace and phone, …).

One `RateLimits` per app over one storage: `memory://` keeps the windows in the process (the embedded
default, one server process); `redis://host:6379/0` keeps them in Redis, shared by every process of a
deployment, so a client cannot multiply its budget by the number of processes. Each limit has a name and
a default rate (`"30/minute"`) given where it is checked; a deployment may override any of them by name
(`SIYU_RATE_LIMITS`, docs/configuration.md).

When the storage cannot be reached, a check lets the request through and logs it (at most once a minute):
a landing page that stops working because Redis blinked would cost the brand more than a minute without
limits.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse, storage, strategies

from siyu.core.errors import ValidationFailed

log = logging.getLogger("siyu.ratelimit")
_LOG_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: int  # 0 when allowed


def parse_rate(rate: str, *, where: str = "rate") -> RateLimitItem:
    try:
        return parse(rate)
    except ValueError as error:
        raise ValidationFailed(
            f"{rate!r} is not a rate", where=where, hint='e.g. "30/minute", "10/hour", "100 per day"'
        ) from error


class RateLimits:
    """Named moving-window limits over one storage (see the module's docstring)."""

    def __init__(self, storage_uri: str = "memory://", rates: Mapping[str, str] | None = None) -> None:
        try:
            backend = storage.storage_from_string(storage_uri)
        except Exception as error:  # limits raises ConfigurationError or a driver's ImportError
            raise ValidationFailed(
                f"cannot use {storage_uri!r} for rate limits: {error}",
                where="SIYU_RATE_LIMIT_STORAGE",
                hint='"memory://" (one process) or "redis://127.0.0.1:6379/0" (pip install "siyu[redis]")',
            ) from error
        self.storage_uri = storage_uri
        self._limiter = strategies.MovingWindowRateLimiter(backend)
        self._overrides = {
            name: parse_rate(rate, where=f"SIYU_RATE_LIMITS[{name}]") for name, rate in (rates or {}).items()
        }
        self._parsed: dict[str, RateLimitItem] = {}
        self._lock = threading.Lock()
        self._last_failure_log = 0.0

    def rate(self, name: str, default: str) -> RateLimitItem:
        """The rate in force for `name`: the deployment's override, else `default`."""
        if name in self._overrides:
            return self._overrides[name]
        with self._lock:
            if name not in self._parsed:
                self._parsed[name] = parse_rate(default, where=name)
            return self._parsed[name]

    def hit(self, name: str, default: str, key: str) -> Verdict:
        """Count one request of `key` against the limit `name`; refused once the window is full."""
        rate = self.rate(name, default)
        # the storage (Redis, for one) never sees a raw address or phone
        key = hashlib.sha256(f"{name}\x1f{key}".encode()).hexdigest()[:32]
        try:
            if self._limiter.hit(rate, name, key):
                return Verdict(True, 0)
            reset = self._limiter.get_window_stats(rate, name, key).reset_time
        except Exception:  # the storage is down: let the request through, say so
            now = time.monotonic()
            if now - self._last_failure_log >= _LOG_EVERY_SECONDS:
                self._last_failure_log = now
                log.warning(
                    "rate limits unavailable (%s); requests pass unchecked", self.storage_uri, exc_info=True
                )
            return Verdict(True, 0)
        return Verdict(False, max(1, math.ceil(reset - time.time())))
