"""Normalising identity values (phone, email, platform ids) and telling junk from real ones.

Pure functions: importing, the API and identity resolution all use them, so one value is spelled one way.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import phonenumbers

PHONE = "phone"
EMAIL = "email"
MAX_VALUE_LENGTH = 200  # the identity table's value column

# Placeholders that systems and people type when they have no value; compared lower-cased and trimmed.
JUNK_TEXTS = frozenset(
    {
        "",
        "null",
        "none",
        "nil",
        "undefined",
        "nan",
        "n/a",
        "na",
        "0",
        "-",
        "--",
        "/",
        "?",
        "unknown",
        "未知",
        "无",
        "暂无",
        "空",
        "test",
        "测试",
    }
)
# Numbers published as examples or used for testing; a real person does not hold them.
JUNK_PHONE_NUMBERS = frozenset({"13800138000", "13900139000", "13000000000", "18888888888", "12345678901"})
# Inside an 11-digit national number: a long run of one digit, or an obvious counting sequence.
JUNK_PHONE_SUBSTRINGS: tuple[str, ...] = tuple(d * 7 for d in "0123456789") + tuple(
    seq[i : i + 8] for seq in ("01234567890", "09876543210") for i in range(4)
)
JUNK_EMAIL_DOMAINS = frozenset(
    {"test.com", "test.cn", "example.com", "example.org", "example.net", "xxx.com", "a.com", "abc.com"}
)
JUNK_EMAIL_LOCALS = frozenset({"test", "null", "none", "noreply", "no-reply", "xxx", "nobody"})

CN_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+", re.ASCII)
# Separators people put inside phone numbers; removed before looking at the digits.
PHONE_SEPARATORS_RE = re.compile(r"[\s\-().\u00a0\u3000]+")
PHONE_PROBLEM = (
    "not a valid CN mobile or E.164 phone number: expected 11 digits starting with 1[3-9], "
    "or +<country><number>"
)
EMAIL_PROBLEM = "not a valid email address: expected name@domain.tld"
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９＋", "0123456789+")


def _as_text(raw: object) -> str | None:
    """The text of a raw cell; integral floats (spreadsheets store phone numbers as numbers) lose `.0`."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, float):
        if raw != raw:  # NaN
            return None
        if raw.is_integer():
            return str(int(raw))
        return repr(raw)
    return str(raw)


def is_junk_phone_national(national: str) -> bool:
    """True for an 11-digit CN number that is a known test number or an obvious pattern."""
    return national in JUNK_PHONE_NUMBERS or any(s in national for s in JUNK_PHONE_SUBSTRINGS)


def _canonical_phone(text: str) -> tuple[str | None, str | None]:
    compact = PHONE_SEPARATORS_RE.sub("", text.translate(_FULLWIDTH_DIGITS))
    if len(set(compact.lstrip("+"))) == 1:  # 000000, 99999: a placeholder of any length
        return None, None
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if compact.startswith("+"):
        digits = compact[1:]
        if not digits.isascii() or not digits.isdigit():
            return None, PHONE_PROBLEM
        if digits.startswith("86") and len(digits) == 13:
            national = digits[2:]
            if is_junk_phone_national(national):
                return None, None
            if CN_MOBILE_RE.fullmatch(national):
                return "+86" + national, None
        try:
            parsed = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            return None, PHONE_PROBLEM
        if not phonenumbers.is_valid_number(parsed):
            return None, PHONE_PROBLEM
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None
    if not compact.isascii() or not compact.isdigit():
        return None, PHONE_PROBLEM
    if len(compact) == 13 and compact.startswith("86"):
        compact = compact[2:]
    if len(compact) == 11 and is_junk_phone_national(compact):
        return None, None
    if CN_MOBILE_RE.fullmatch(compact):
        return "+86" + compact, None
    return None, PHONE_PROBLEM


def _canonical_email(text: str) -> tuple[str | None, str | None]:
    value = text.strip().lower()
    if not EMAIL_RE.fullmatch(value):
        return None, EMAIL_PROBLEM
    local, _, domain = value.partition("@")
    if domain in JUNK_EMAIL_DOMAINS or local in JUNK_EMAIL_LOCALS:
        return None, None
    return value, None


def _canonical_id(text: str) -> tuple[str | None, str | None]:
    value = text.strip()
    if len(set(value)) == 1:  # "000", "xxxx", "----": filler, never an id
        return None, None
    return value, None


def _canonical(kind: str, text: str) -> tuple[str | None, str | None]:
    if text.strip().lower() in JUNK_TEXTS:
        return None, None
    if kind == PHONE:
        value, problem = _canonical_phone(text)
    elif kind == EMAIL:
        value, problem = _canonical_email(text)
    else:
        value, problem = _canonical_id(text)
    if value is not None and len(value) > MAX_VALUE_LENGTH:
        return None, f"longer than {MAX_VALUE_LENGTH} characters: shorten it or map the column elsewhere"
    return value, problem


def normalized_denylist(kind: str, denylist: Collection[str]) -> frozenset[str]:
    """The canonical forms of `denylist` entries for `kind` (entries of other shapes are kept as typed)."""
    out: set[str] = set()
    for entry in denylist:
        value, _ = _canonical(kind, entry)
        out.add(value if value is not None else entry.strip())
    return frozenset(out)


def check(kind: str, raw: object, *, denylist: Collection[str] = ()) -> tuple[str | None, str | None]:
    """(canonical value, None), or (None, None) when absent or junk, or (None, problem) when malformed.

    `kind` is an identity kind ("phone", "email", "wechat_unionid", … or a custom kind). The problem
    text says what shape was expected, so it can go straight into a reject report.
    """
    text = _as_text(raw)
    if text is None:
        return None, None
    value, problem = _canonical(kind, text)
    if value is not None and denylist and value in normalized_denylist(kind, denylist):
        return None, None
    return value, problem


def normalize(kind: str, raw: object, *, denylist: Collection[str] = ()) -> str | None:
    """The canonical value of `raw`, or None when it is absent, junk or malformed.

    Phones become E.164 (`+8613800138001`), emails are trimmed and lower-cased, other ids are trimmed
    with their case kept. Never raises.
    """
    return check(kind, raw, denylist=denylist)[0]


def is_junk(kind: str, value: object, denylist: Collection[str] = ()) -> bool:
    """True when `value` is present but must never identify anyone (placeholder, test number, denylisted).

    Absent values (None) count as junk too: neither may be used to link records.
    """
    text = _as_text(value)
    if text is None:
        return True
    canonical, problem = _canonical(kind, text)
    if problem is not None:
        return False  # malformed, not junk: the caller reports it
    if canonical is None:
        return True
    return bool(denylist) and canonical in normalized_denylist(kind, denylist)
