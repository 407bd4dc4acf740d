"""Masking of personal data for roles that may see a customer but not their full contact details.

Staff see phones as 138****1234: enough to recognise a customer they talk to, not enough to copy a list.
"""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"\D")


def mask_phone(value: str | None) -> str | None:
    """`+8613812341234` → `138****1234`; other numbers keep their first 3 and last 4 digits.

    A China country code is dropped (staff know the numbers as 11-digit mobiles); numbers too short to
    mask meaningfully become all stars except the last two digits.
    """
    if value is None:
        return None
    digits = _NON_DIGITS.sub("", value)
    if value.startswith("+86") or (len(digits) == 13 and digits.startswith("86")):
        digits = digits[2:]
    if len(digits) >= 8:
        return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
    if len(digits) <= 2:
        return "*" * len(digits)
    return "*" * (len(digits) - 2) + digits[-2:]


def mask_identity(kind: str, value: str, *, masked: bool) -> str:
    """The value of an identity as this viewer may see it (only phones are masked)."""
    if masked and kind == "phone":
        return mask_phone(value) or ""
    return value
