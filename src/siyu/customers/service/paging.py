"""Opaque cursors and keyset pagination: stable pages while rows arrive, no OFFSET.

Shared by every list of the customers, orders and events services.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from siyu.core.errors import ValidationFailed

MAX_LIMIT = 200


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor for keyset pagination (datetimes are kept as ISO text)."""
    values = [p.isoformat() if isinstance(p, datetime) else p for p in parts]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, arity: int, where: str = "cursor") -> list[Any]:
    """The parts of a cursor made by `encode_cursor`, or ValidationFailed if it was not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != arity:
            raise ValueError
        return values
    except ValueError:
        raise ValidationFailed(
            "cursor is not one this API gave out", where=where, hint="pass next_cursor from the previous page"
        ) from None


def decode_time_id_cursor(cursor: str, where: str = "cursor") -> tuple[datetime, int]:
    time_text, id_ = decode_cursor(cursor, arity=2, where=where)
    try:
        return datetime.fromisoformat(time_text), int(id_)
    except (TypeError, ValueError):
        raise ValidationFailed("cursor is not one this API gave out", where=where) from None


def keyset_before(
    time_column: Any, id_column: Any, before: datetime, before_id: int | None
) -> ColumnElement[bool]:
    """Rows strictly after (time, id) in newest-first order; `before_id=None` keeps rows at `before` too."""
    if before_id is None:
        return time_column <= before  # type: ignore[no-any-return]
    return or_(time_column < before, and_(time_column == before, id_column < before_id))


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))
