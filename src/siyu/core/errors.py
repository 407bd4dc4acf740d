"""Typed errors that are part of siyu's interface: what was wrong, where, and how to fix it.

The API maps them to 4xx responses carrying the same message; the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SiyuError(Exception):
    """Base of every error a user can act on."""

    message: str
    where: str | None = None
    hint: str | None = None
    status_code: int = 400
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [self.message]
        if self.where:
            parts.append(f"(at {self.where})")
        if self.hint:
            parts.append(f"— {self.hint}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "where": self.where,
            "hint": self.hint,
            **({"details": self.details} if self.details else {}),
        }


@dataclass
class ValidationFailed(SiyuError):
    status_code: int = 422


@dataclass
class NotFound(SiyuError):
    status_code: int = 404


@dataclass
class PermissionDenied(SiyuError):
    status_code: int = 403


@dataclass
class Unauthorized(SiyuError):
    status_code: int = 401


@dataclass
class Conflict(SiyuError):
    status_code: int = 409
