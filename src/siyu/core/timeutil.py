"""Time helpers: every stored time is timezone-aware UTC; display converts to the workspace zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime, assume_zone: str = "UTC") -> datetime:
    """Return `value` in UTC; a naive value is taken to be in `assume_zone`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(assume_zone))
    return value.astimezone(UTC)


def to_zone(value: datetime, zone: str) -> datetime:
    """Convert an aware UTC time to `zone` for display."""
    return value.astimezone(ZoneInfo(zone))
