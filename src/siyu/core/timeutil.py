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


def parse_instant(text: str, *, where: str) -> datetime:
    """An ISO 8601 time with its offset ("2026-06-01T00:00:00+08:00", or "…Z"), for command lines;
    a clear error for anything else."""
    from siyu.core.errors import ValidationFailed

    hint = "e.g. 2026-06-01T00:00:00+08:00"
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a time", where=where, hint=hint) from None
    if value.tzinfo is None:
        raise ValidationFailed(f"{where} needs an offset", where=where, hint=hint)
    return value
