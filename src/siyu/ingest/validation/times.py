"""Parsing date/time columns to UTC: the common spellings vectorised, the rare ones through Python.

Naive times are wall-clock times of the workspace zone; day/month/year dates are refused, not guessed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

UTC_US = pl.Datetime("us", "UTC")
FUTURE_TOLERANCE = timedelta(days=1)
TIME_REASON = (
    "unparseable date/time: use e.g. 2024-03-05 14:03:00, 2024/3/5 14:03, 20240305 "
    "or ISO 8601 with offset (2024-03-05T14:03:00+08:00)"
)
DAY_MONTH_REASON = (
    "ambiguous date: in 05/03/2024 the day and month could be either way round (5 March or May 3), "
    "so dates with the year last are not guessed; write the year first: YYYY-MM-DD, e.g. 2024-03-05"
)
FUTURE_REASON = "date is in the future: check the year, or the time zone of the file"

_DIGITS_RE = r"^[0-9]+$"
# Two numbers before the year (05/03/2024, 5.3.24, 05-03-2024 14:00): day-first in China and Europe,
# month-first in the US; a file rarely tells which, so these are refused rather than read wrongly.
_YEAR_LAST_RE = r"^[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-](?:[0-9]{2}|[0-9]{4})(?:[\sT].*)?$"
_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d", "%Y%m%d%H%M%S")
_AWARE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M%z")
_PY_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d-%b-%Y", "%b %d %Y", "%Y-%m")
EXCEL_EPOCH = datetime(1899, 12, 30)
_EXCEL_SERIAL_RANGE = (10_000, 80_000)  # 1927 .. 2119: anything else is not a date held as a number


def _excel_serial_or_epoch(values: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(naive local times from Excel serial numbers, UTC times from epoch seconds / milliseconds)."""
    frame = pl.DataFrame({"v": values})
    digits = pl.col("v").str.contains(_DIGITS_RE).fill_null(False)
    length = pl.col("v").str.len_chars()
    number = pl.col("v").cast(pl.Float64, strict=False)
    low, high = _EXCEL_SERIAL_RANGE
    out = frame.select(
        serial=pl.when(
            pl.col("v").str.contains(r"^[0-9]{5}(?:\.[0-9]+)?$").fill_null(False)
            & number.is_between(low, high)
        ).then(
            pl.lit(EXCEL_EPOCH, dtype=pl.Datetime("us"))
            + pl.duration(microseconds=(number * 86_400e6).round(0))
        ),
        epoch=pl.when(digits & (length == 10))
        .then(pl.from_epoch(pl.col("v").cast(pl.Int64, strict=False), time_unit="s"))
        .when(digits & (length == 13))
        .then(pl.from_epoch(pl.col("v").cast(pl.Int64, strict=False), time_unit="ms"))
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC"),
    )
    return out["serial"], out["epoch"]


def _python_time(text: str, zone: ZoneInfo) -> datetime | None:
    """Slow path for the rare spellings the vectorised formats miss (ISO variants, month names)."""
    candidate = text.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(candidate.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _PY_FORMATS:
            try:
                parsed = datetime.strptime(candidate, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _normalise_time_text(values: pl.Series) -> pl.Series:
    """Spellings folded to "YYYY-M-D H:M:S[+hh:mm]": slashes, dots, 年月日, a T separator, Z / UTC."""
    return (
        pl.DataFrame({"v": values})
        .select(
            pl.col("v")
            .str.replace(r"^([0-9]{4})\.([0-9]{1,2})\.([0-9]{1,2})", "$1-$2-$3")  # 2024.3.5
            .str.replace_all(r"[/年月]", "-")
            .str.replace_all("日", "", literal=True)
            .str.replace(r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2})(?:T|\s+)", "$1 ")
            .str.replace(r"(?i)z$|\s*utc$", "+00:00")
        )
        .to_series()
    )


def parse_times(values: pl.Series, zone: str) -> tuple[pl.Series, pl.Series]:
    """Times to UTC. Naive times are wall-clock times in `zone`; offsets are honoured.

    Formats are tried from the most common on the rows still unparsed, so a file in one format costs one
    pass; what no vectorised format reads goes through Python's ISO parser. A date written with the year
    last (05/03/2024) is refused with `DAY_MONTH_REASON`: day and month order cannot be told apart.
    """
    n = values.len()
    # the common case in one fast pass (polars has a fast path for this exact format)
    naive = values.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False).rename("naive")
    aware = pl.repeat(None, n, dtype=UTC_US, eager=True).rename("aware")
    remaining = (values.is_not_null() & naive.is_null()).arg_true()
    text = values.clone()
    if remaining.len():
        text.scatter(remaining, _normalise_time_text(values.gather(remaining)))
    for fmt in _NAIVE_FORMATS:
        if remaining.len() == 0:
            break
        parsed = text.gather(remaining).str.strptime(pl.Datetime("us"), fmt, strict=False)
        ok = parsed.is_not_null()
        if ok.any():
            naive.scatter(remaining.filter(ok), parsed.filter(ok))
            remaining = remaining.filter(~ok)
    for fmt in _AWARE_FORMATS:
        if remaining.len() == 0:
            break
        parsed = text.gather(remaining).str.strptime(UTC_US, fmt, strict=False)
        ok = parsed.is_not_null()
        if ok.any():
            aware.scatter(remaining.filter(ok), parsed.filter(ok))
            remaining = remaining.filter(~ok)
    if remaining.len():
        serial, epoch = _excel_serial_or_epoch(values.gather(remaining))
        ok = serial.is_not_null()
        if ok.any():
            naive.scatter(remaining.filter(ok), serial.filter(ok))
        ok_epoch = epoch.is_not_null()
        if ok_epoch.any():
            aware.scatter(remaining.filter(ok_epoch), epoch.filter(ok_epoch))
        remaining = remaining.filter(~(ok | ok_epoch))
    if remaining.len():
        tz = ZoneInfo(zone)
        slow = [_python_time(v, tz) for v in values.gather(remaining).to_list()]
        parsed = pl.Series(slow, dtype=UTC_US)
        ok = parsed.is_not_null()
        if ok.any():
            aware.scatter(remaining.filter(ok), parsed.filter(ok))
    local = naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone(
        "UTC"
    )
    result = aware.fill_null(local)
    year = result.dt.year()
    result = (
        pl.DataFrame({"r": result, "y": year})
        .select(pl.when(pl.col("y").is_between(1900, 2200)).then(pl.col("r")))
        .to_series()
    )
    problem = pl.DataFrame({"v": values, "r": result}).select(
        pl.when(pl.col("v").is_null() | pl.col("r").is_not_null())
        .then(None)
        .when(pl.col("v").str.contains(_YEAR_LAST_RE))
        .then(pl.lit(DAY_MONTH_REASON))
        .otherwise(pl.lit(TIME_REASON))
    )
    return result.rename(values.name), problem.to_series()
