"""Identity column parsers (phone, email, platform ids): the common shapes vectorised with polars.

What the fast expressions do not settle goes through `identity_values.check`, so both give one answer.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from siyu.customers import identity_values as iv

_FAST_EMAIL_RE = r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+$"


def parse_phones(values: pl.Series, denylist: Collection[str] = ()) -> tuple[pl.Series, pl.Series]:
    """Phones to E.164; CN mobiles by one regex, everything else through `identity_values.check`."""
    frame = pl.DataFrame({"v": values}).with_columns(
        national=pl.col("v")
        .str.replace_all(r"[\s\-().\u00a0\u3000]+", "")
        .str.extract(r"^(?:\+86|0086|86)?(1[3-9][0-9]{9})$", 1)
    )
    frame = frame.with_columns(
        junk=pl.col("national").is_in(list(iv.JUNK_PHONE_NUMBERS))
        | pl.col("national").str.contains_any(list(iv.JUNK_PHONE_SUBSTRINGS))
    ).with_columns(value=pl.when(~pl.col("junk")).then(pl.lit("+86") + pl.col("national")))
    value = frame["value"]
    problem = pl.repeat(None, values.len(), dtype=pl.Utf8, eager=True).rename("problem")
    slow = (values.is_not_null() & frame["national"].is_null()).arg_true()
    if slow.len():
        checked = [iv.check(iv.PHONE, v) for v in values.gather(slow).to_list()]
        value.scatter(slow, pl.Series([c[0] for c in checked], dtype=pl.Utf8))
        problem.scatter(slow, pl.Series([c[1] for c in checked], dtype=pl.Utf8))
    return _deny(value, iv.normalized_denylist(iv.PHONE, denylist)), problem


def parse_emails(values: pl.Series, denylist: Collection[str] = ()) -> tuple[pl.Series, pl.Series]:
    """Emails lower-cased; plain ASCII addresses by regex, anything else through `identity_values.check`."""
    frame = pl.DataFrame({"v": values}).with_columns(low=pl.col("v").str.strip_chars().str.to_lowercase())
    frame = frame.with_columns(
        # over-long addresses take the slow path, which refuses them as the identity table would
        fast=(
            pl.col("low").str.contains(_FAST_EMAIL_RE)
            & (pl.col("low").str.len_chars() <= iv.MAX_VALUE_LENGTH)
        ).fill_null(False),
        local=pl.col("low").str.extract(r"^([^@]*)@", 1),
        domain=pl.col("low").str.extract(r"@(.*)$", 1),
    ).with_columns(
        value=pl.when(
            pl.col("fast")
            & ~pl.col("domain").is_in(list(iv.JUNK_EMAIL_DOMAINS))
            & ~pl.col("local").is_in(list(iv.JUNK_EMAIL_LOCALS))
        ).then(pl.col("low"))
    )
    value = frame["value"]
    problem = pl.repeat(None, values.len(), dtype=pl.Utf8, eager=True).rename("problem")
    slow = (values.is_not_null() & ~frame["fast"]).arg_true()
    if slow.len():
        checked = [iv.check(iv.EMAIL, v) for v in values.gather(slow).to_list()]
        value.scatter(slow, pl.Series([c[0] for c in checked], dtype=pl.Utf8))
        problem.scatter(slow, pl.Series([c[1] for c in checked], dtype=pl.Utf8))
    return _deny(value, iv.normalized_denylist(iv.EMAIL, denylist)), problem


def parse_member_emails(values: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Emails of staff members (owner columns), lower-cased: shape checked, but no junk rule — a member
    may well log in as ops@example.com, and an unknown address is refused later as "not a member"."""
    frame = pl.DataFrame({"v": values}).with_columns(low=pl.col("v").str.strip_chars().str.to_lowercase())
    frame = frame.with_columns(fast=pl.col("low").str.contains(_FAST_EMAIL_RE).fill_null(False))
    frame = frame.select(
        value=pl.when(pl.col("fast")).then(pl.col("low")),
        problem=pl.when((pl.col("low").str.len_chars() > 0) & ~pl.col("fast")).then(pl.lit(iv.EMAIL_PROBLEM)),
    )
    return frame["value"].rename(values.name), frame["problem"]


def parse_ids(values: pl.Series, kind: str, denylist: Collection[str] = ()) -> tuple[pl.Series, pl.Series]:
    """Platform ids trimmed with case kept; placeholders and one-character fillers ("000") dropped."""
    frame = pl.DataFrame({"v": values.str.strip_chars()}).with_columns(
        junk=pl.col("v").str.to_lowercase().is_in(list(iv.JUNK_TEXTS))
        | (pl.col("v").str.strip_chars(pl.col("v").str.slice(0, 1)) == ""),
        too_long=pl.col("v").str.len_chars() > iv.MAX_VALUE_LENGTH,
    )
    out = frame.select(
        value=pl.when(~pl.col("junk") & ~pl.col("too_long")).then(pl.col("v")),
        problem=pl.when(pl.col("too_long")).then(
            pl.lit(f"longer than {iv.MAX_VALUE_LENGTH} characters: is this the right column?")
        ),
    )
    return _deny(out["value"], iv.normalized_denylist(kind, denylist)), out["problem"]


def _deny(values: pl.Series, denied: frozenset[str]) -> pl.Series:
    if not denied:
        return values
    return pl.DataFrame({"v": values}).select(pl.when(~pl.col("v").is_in(list(denied))).then(pl.col("v")))[
        "v"
    ]
