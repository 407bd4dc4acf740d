"""Normalising and validating mapped import rows into a `ValidatedBatch` of typed rows and rejects.

Vectorised with polars: each field is parsed by column expressions; only the few values the fast
expressions cannot read fall back to Python, so a million order rows validate in about a second or two.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl

from siyu.core.errors import ValidationFailed
from siyu.customers import identity_values as iv
from siyu.ingest import mapping as mapping_rules
from siyu.ingest.reading import ROW_NUMBER, RawTable, cell_text
from siyu.ingest.schemas import (
    ATTRIBUTE_PREFIX,
    CONSENT_PREFIX,
    CUSTOM_IDENTITY_PREFIX,
    FIELDS_BY_KIND,
    IDENTITY_FIELDS,
    PROPERTY_PREFIX,
    ImportKind,
    Reject,
    ValidatedBatch,
)

Unit = Literal["yuan", "cents"]
UTC_US = pl.Datetime("us", "UTC")
FUTURE_TOLERANCE = timedelta(days=1)
REQUIRED_FIELDS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.CUSTOMERS: (),
    ImportKind.ORDERS: ("external_id", "placed_at", "paid_cents"),
    ImportKind.EVENTS: ("type", "occurred_at"),
}
MONEY_FIELDS: tuple[str, ...] = tuple(
    ["total_cents", "discount_cents", "paid_cents", "refunded_cents", "unit_price_cents", "line_amount_cents"]
)
# Record keys (JSON batch API / webhook) that give a money field in yuan instead of integer cents.
YUAN_KEYS: dict[str, str] = {
    alias: money
    for money in MONEY_FIELDS
    for alias in (money.removesuffix("_cents"), money.removesuffix("_cents") + "_amount")
} | {"refund": "refunded_cents", "refund_amount": "refunded_cents"}


def _words_to(target: str, words: str) -> dict[str, str]:
    return dict.fromkeys(words.split(), target)


# Spellings of shop systems (Youzan, Taobao, Weimob, POS exports) and of people; compared lower-cased
# with spaces and dashes turned into underscores.
STATUS_WORDS: dict[str, str] = {
    **_words_to(
        "paid",
        "已支付 已付款 已付 支付成功 交易成功 交易完成 已完成 完成 待发货 已发货 已收货 已签收 paid completed "
        "complete success succeeded shipped delivered trade_success trade_finished finished",
    ),
    **_words_to("refunded", "已退款 全额退款 退款成功 refunded full_refund fully_refunded"),
    **_words_to(
        "partially_refunded", "部分退款 部分退款成功 partially_refunded partial_refund partly_refunded"
    ),
    **_words_to(
        "pending", "待付款 待支付 未付款 未支付 unpaid pending wait_buyer_pay created awaiting_payment"
    ),
    **_words_to("cancelled", "已取消 取消 交易关闭 已关闭 关闭 cancelled canceled closed trade_closed void"),
}
GENDER_WORDS: dict[str, str] = {
    **_words_to("male", "男 男性 先生 m male man 1"),
    **_words_to("female", "女 女性 女士 f female woman 2"),
}
CONSENT_WORDS: dict[str, str] = {
    **_words_to("granted", "是 同意 已同意 订阅 已订阅 yes y true 1 granted opt_in subscribed"),
    **_words_to("withdrawn", "否 不同意 拒绝 退订 已退订 no n false 0 withdrawn opt_out unsubscribed"),
}
CURRENCY_WORDS = {"人民币": "CNY", "元": "CNY", "rmb": "CNY", "¥": "CNY", "￥": "CNY"}

AMOUNT_REASON = "not an amount: write yuan like 1234.50 (¥, 元 and thousands separators are fine)"
CENTS_REASON = "not a whole number of cents: give an integer such as 1250 (= ¥12.50)"
PRECISION_REASON = "more than 2 decimal places: amounts are yuan with at most 2 decimals (fen)"
NEGATIVE_REASON = "negative amount: amounts must be 0 or more (put refunds in the refund column)"
TIME_REASON = (
    "unparseable date/time: use e.g. 2024-03-05 14:03:00, 2024/3/5 14:03, 20240305 "
    "or ISO 8601 with offset (2024-03-05T14:03:00+08:00)"
)
FUTURE_REASON = "date is in the future: check the year, or the time zone of the file"

_DIGITS_RE = r"^[0-9]+$"
_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d", "%Y%m%d%H%M%S")
_AWARE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M%z")
_PY_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d-%b-%Y", "%b %d %Y", "%Y-%m")
EXCEL_EPOCH = datetime(1899, 12, 30)
_EXCEL_SERIAL_RANGE = (10_000, 80_000)  # 1927 .. 2119: anything else is not a date held as a number


# ---------------------------------------------------------------------------------------------------------
# Column parsers. Each takes a stripped Utf8 Series (null = empty cell) and returns the typed values and a
# Utf8 Series of problems (null = fine). A value that is present but refused has a problem.


def parse_cents(values: pl.Series, unit: Unit = "yuan") -> tuple[pl.Series, pl.Series]:
    """Amounts to integer cents, exactly: the decimal text is split, never turned into a float."""
    frame = pl.DataFrame({"v": values})
    if unit == "cents":
        out = frame.select(
            cents=pl.col("v").str.extract(r"^([+-]?[0-9]{1,17})(?:\.0*)?$", 1).cast(pl.Int64, strict=False)
        )
        cents = out["cents"]
        problem = (
            pl.DataFrame({"v": values, "c": cents})
            .select(
                pl.when(pl.col("v").is_not_null() & pl.col("c").is_null())
                .then(pl.lit(CENTS_REASON))
                .when(pl.col("c") < 0)
                .then(pl.lit(NEGATIVE_REASON))
            )
            .to_series()
        )
        return cents.rename(values.name), problem
    cleaned = pl.col("v").str.replace_all(r"[¥￥,，\s]|元|(?i:rmb|cny)", "")
    parts = cleaned.str.extract_groups(r"^([+-]?)([0-9]{0,15})(?:\.([0-9]*))?$")
    out = frame.select(
        v=pl.col("v"),
        sign=parts.struct.field("1"),
        whole=parts.struct.field("2"),
        frac=parts.struct.field("3").fill_null(""),
    ).with_columns(
        ok=pl.col("sign").is_not_null() & ((pl.col("whole") != "") | (pl.col("frac") != "")),
        extra=pl.col("frac").str.slice(2).str.contains("[1-9]"),
    )
    out = out.with_columns(
        magnitude=pl.when(pl.col("ok") & ~pl.col("extra")).then(
            pl.col("whole").replace("", "0").cast(pl.Int64, strict=False) * 100
            + pl.col("frac").str.slice(0, 2).str.pad_end(2, "0").cast(pl.Int64, strict=False)
        )
    ).with_columns(
        cents=pl.when(pl.col("sign") == "-").then(-pl.col("magnitude")).otherwise(pl.col("magnitude")),
    )
    problem = out.select(
        pl.when(pl.col("v").is_null())
        .then(None)
        .when(~pl.col("ok"))
        .then(pl.lit(AMOUNT_REASON))
        .when(pl.col("extra"))
        .then(pl.lit(PRECISION_REASON))
        .when(pl.col("cents") < 0)
        .then(pl.lit(NEGATIVE_REASON))
    ).to_series()
    return out["cents"].rename(values.name), problem


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
    pass; what no vectorised format reads goes through Python's ISO parser.
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
        pl.when(pl.col("v").is_not_null() & pl.col("r").is_null()).then(pl.lit(TIME_REASON))
    )
    return result.rename(values.name), problem.to_series()


def _words(values: pl.Series, words: Mapping[str, str]) -> pl.Series:
    key = values.str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    return key.replace_strict(dict(words), default=None, return_dtype=pl.Utf8)


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
        fast=pl.col("low").str.contains(r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+$").fill_null(False),
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


def _int_values(values: pl.Series, what: str, minimum: int) -> tuple[pl.Series, pl.Series]:
    frame = pl.DataFrame({"v": values}).with_columns(
        n=pl.col("v").str.extract(r"^([+-]?[0-9]{1,15})(?:\.0*)?$", 1).cast(pl.Int64, strict=False)
    )
    problem = frame.select(
        pl.when(pl.col("v").is_not_null() & pl.col("n").is_null())
        .then(pl.lit(f"not a whole number: {what} must be an integer"))
        .when(pl.col("n") < minimum)
        .then(pl.lit(f"{what} must be {minimum} or more"))
    ).to_series()
    return frame["n"], problem


# ---------------------------------------------------------------------------------------------------------
# The checker: canonical columns in, typed columns and rejects out.


class _Checker:
    def __init__(self, frame: pl.DataFrame, labels: dict[str, str], raw: pl.DataFrame) -> None:
        self.frame = frame  # row_number + one stripped Utf8 column per mapped field
        self.labels = labels  # field -> column name as the user knows it (for rejects)
        self.raw = raw  # field -> the original text (for rejects)
        self.out: dict[str, pl.Series] = {}
        self.problems: list[pl.DataFrame] = []
        self.rows = frame[ROW_NUMBER]

    def has(self, field: str) -> bool:
        return field in self.frame.columns

    def text(self, field: str) -> pl.Series:
        return self.frame[field]

    def flag(self, field: str, problem: pl.Series, *, label: str | None = None) -> None:
        """Record one reject per row where `problem` is not null."""
        mask = problem.is_not_null()
        if not mask.any():
            return
        value = (
            self.raw[field].filter(mask)
            if field in self.raw.columns
            else pl.repeat("", int(mask.sum()), eager=True)
        )
        self.problems.append(
            pl.DataFrame(
                {
                    "row_number": self.rows.filter(mask),
                    "column": pl.repeat(label or self.labels.get(field, field), int(mask.sum()), eager=True),
                    "value": value.fill_null("").cast(pl.Utf8),
                    "reason": problem.filter(mask),
                }
            )
        )

    def where(self, field: str, mask: pl.Series, reason: str, *, label: str | None = None) -> None:
        problem = pl.DataFrame({"m": mask}).select(pl.when(pl.col("m")).then(pl.lit(reason))).to_series()
        self.flag(field, problem, label=label)

    def require(self, field: str, reason: str) -> None:
        self.where(field, self.out[field].is_null() & self.text(field).is_null(), reason)


def _status_and_refund(check: _Checker) -> None:
    paid = check.out["paid_cents"]
    refund = check.out.get("refunded_cents")
    if refund is None:
        refund = pl.repeat(None, paid.len(), dtype=pl.Int64, eager=True)
    status = check.out.get("status")
    if status is None:
        status = pl.repeat(None, paid.len(), dtype=pl.Utf8, eager=True)
    frame = pl.DataFrame({"s": status.fill_null("paid"), "p": paid, "r": refund})
    settled = pl.col("s").is_in(["paid", "partially_refunded", "refunded"])
    frame = frame.select(
        s=pl.when(settled & (pl.col("r") > 0) & (pl.col("r") >= pl.col("p")))
        .then(pl.lit("refunded"))
        .when(settled & (pl.col("r") > 0))
        .then(pl.lit("partially_refunded"))
        .otherwise(pl.col("s")),
        # a refunded order without a refund amount was refunded in full
        r=pl.when((pl.col("s") == "refunded") & pl.col("r").is_null())
        .then(pl.col("p"))
        .otherwise(pl.col("r")),
        too_much=pl.col("r") > pl.col("p"),
    )
    check.out["status"] = frame["s"].rename("status")
    check.out["refunded_cents"] = frame["r"].rename("refunded_cents")
    if "refunded_cents" in check.frame.columns:
        check.where(
            "refunded_cents",
            frame["too_much"].fill_null(False),
            "refund larger than the amount paid: check the refund and paid columns of this order",
        )


def line_numbers(order_ids: pl.Series) -> pl.Series:
    """1, 2, … for the rows sharing an order id, in file order.

    Exports list an order's lines next to each other; when every id forms one run, counting within runs
    is a single pass. Otherwise (interleaved ids) the rows are grouped by id.
    """
    frame = pl.DataFrame({"e": order_ids}).with_columns(
        new=(pl.col("e").ne_missing(pl.col("e").shift(1))).fill_null(True)
    )
    starts = frame.filter(pl.col("new"))["e"]
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    if starts.n_unique() == starts.len():
        counted = frame.select(index - pl.when(pl.col("new")).then(index).forward_fill() + 1)
    else:
        counted = frame.select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("e"))
    return counted.to_series().rename("line_no")


def _check_orders(check: _Checker, known_stores: Collection[str], units: Mapping[str, Unit]) -> None:
    for field in MONEY_FIELDS:
        if check.has(field):
            cents, problem = parse_cents(check.text(field), units.get(field, "yuan"))
            check.out[field] = cents
            check.flag(field, problem)
    if check.has("external_id"):
        check.out["external_id"] = check.text("external_id")
        check.require("external_id", "missing order number: every order row needs its 订单号 / order id")
    if check.has("paid_cents"):
        check.require("paid_cents", "missing paid amount: give 实付金额 / paid in yuan (0 for a free order)")
    if check.has("status"):
        status = _words(check.text("status"), STATUS_WORDS)
        check.out["status"] = status
        check.where(
            "status",
            status.is_null() & check.text("status").is_not_null(),
            "unknown status: use paid / refunded / partially_refunded / pending / cancelled "
            "(已支付, 已退款, 部分退款, 待付款, 已取消)",
        )
    _status_and_refund(check)
    if check.has("currency"):
        low = check.text("currency").str.to_lowercase()
        currency = low.replace_strict(CURRENCY_WORDS, default=low.str.to_uppercase(), return_dtype=pl.Utf8)
        check.out["currency"] = currency
        check.where(
            "currency",
            ~currency.str.contains(r"^[A-Z]{3}$").fill_null(True),
            "unknown currency: use a 3-letter ISO code such as CNY",
        )
    else:
        check.out["currency"] = pl.repeat("CNY", check.rows.len(), eager=True, dtype=pl.Utf8)
    if check.has("store"):
        by_lower = {code.lower(): code for code in known_stores}
        store = (
            check.text("store")
            .str.to_lowercase()
            .replace_strict(by_lower, default=None, return_dtype=pl.Utf8)
        )
        check.out["store"] = store
        shown = ", ".join(sorted(known_stores)[:20]) or "none yet"
        check.where(
            "store",
            store.is_null() & check.text("store").is_not_null(),
            f"unknown store: use the code of an existing store ({shown}), or add the store first",
        )
    for field in ("sku", "product_name", "category"):
        if check.has(field):
            check.out[field] = check.text(field)
    if check.has("quantity"):
        quantity, problem = _int_values(check.text("quantity"), "quantity", 0)
        check.out["quantity"] = quantity
        check.flag("quantity", problem)
    if check.has("line_no"):
        line_no, problem = _int_values(check.text("line_no"), "line number", 1)
        check.out["line_no"] = line_no
        check.flag("line_no", problem)
    elif "external_id" in check.out:
        check.out["line_no"] = line_numbers(check.out["external_id"])


def _check_events(check: _Checker) -> None:
    for field in ("type", "source", "external_id"):
        if check.has(field):
            check.out[field] = check.text(field)
    if check.has("type"):
        check.require("type", "missing event type: give 事件类型 / type, e.g. page_view")
    if check.has("properties"):
        text = check.text("properties")
        present = text.is_not_null().arg_true()
        bad = [not _is_json_object(v) for v in text.gather(present).to_list()]
        mask = pl.repeat(False, text.len(), eager=True)
        if any(bad):
            mask.scatter(present.filter(pl.Series(bad)), True)
        check.out["properties"] = text
        check.where("properties", mask, 'properties must be a JSON object, e.g. {"page": "/menu"}')


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _check_customers(check: _Checker, now: datetime, zone: str) -> None:
    for field in ("name", "city"):
        if check.has(field):
            check.out[field] = check.text(field)
    if check.has("gender"):
        check.out["gender"] = _words(check.text("gender"), GENDER_WORDS).fill_null("unknown")
    if check.has("birthday"):
        times, problem = parse_times(check.text("birthday"), zone)
        birthday = times.dt.convert_time_zone(zone).dt.date()
        check.out["birthday"] = birthday
        check.flag("birthday", problem)
        check.where(
            "birthday", (birthday > now.astimezone(ZoneInfo(zone)).date()).fill_null(False), FUTURE_REASON
        )
    if check.has("owner_email"):
        owner, problem = parse_emails(check.text("owner_email"))
        check.out["owner_email"] = owner
        check.flag("owner_email", problem)


def _check_common(
    check: _Checker,
    kind: ImportKind,
    *,
    known_channels: Mapping[str, str],
    identity_denylist: Sequence[str],
    zone: str,
    now: datetime,
) -> list[str]:
    """Times, channel, identities, consent and free columns; returns the identity columns produced."""
    limit = now + FUTURE_TOLERANCE
    for field in ("placed_at", "occurred_at", "created_at"):
        if check.has(field):
            times, problem = parse_times(check.text(field), zone)
            check.out[field] = times
            check.flag(field, problem)
            check.where(field, (times > limit).fill_null(False), FUTURE_REASON)
            if field in REQUIRED_FIELDS[kind]:
                check.require(field, f"missing time: every row needs its {field}")
    if check.has("channel"):
        lookup = {k.strip().lower(): v for k, v in known_channels.items()}
        channel = (
            check.text("channel")
            .str.to_lowercase()
            .replace_strict(lookup, default=None, return_dtype=pl.Utf8)
        )
        check.out["channel"] = channel
        keys = ", ".join(sorted(set(known_channels.values()))[:30]) or "none yet"
        check.where(
            "channel",
            channel.is_null() & check.text("channel").is_not_null(),
            f"unknown channel: use one of the channel keys ({keys}), or add it as a channel alias",
        )
    identity_fields: list[str] = []
    for field in check.frame.columns:
        if field in IDENTITY_FIELDS or field.startswith(CUSTOM_IDENTITY_PREFIX):
            identity_kind = field.removeprefix(CUSTOM_IDENTITY_PREFIX)
            if identity_kind == iv.PHONE:
                value, problem = parse_phones(check.text(field), identity_denylist)
            elif identity_kind == iv.EMAIL:
                value, problem = parse_emails(check.text(field), identity_denylist)
            else:
                value, problem = parse_ids(check.text(field), identity_kind, identity_denylist)
            check.out[field] = value
            check.flag(field, problem)
            identity_fields.append(field)
        elif field.startswith(CONSENT_PREFIX):
            consent = _words(check.text(field), CONSENT_WORDS)
            check.out[field] = consent
            check.where(
                field,
                consent.is_null() & check.text(field).is_not_null(),
                "unknown consent value: use yes/no (是/否) or granted/withdrawn",
            )
        elif field.startswith((ATTRIBUTE_PREFIX, PROPERTY_PREFIX)):
            check.out[field] = check.text(field)
    return identity_fields


def _check_identity_present(check: _Checker, identity_fields: list[str]) -> None:
    if not identity_fields:
        return
    frame = pl.DataFrame([check.out[f].rename(f) for f in identity_fields])
    none = frame.select(pl.all_horizontal(pl.all().is_null())).to_series()
    rejected_rows = (
        pl.concat([p.select("row_number") for p in check.problems])["row_number"]
        if check.problems
        else pl.Series([], dtype=pl.Int64)
    )
    # a malformed identity was already reported; "no identity" would only repeat it
    none = none & ~check.rows.is_in(rejected_rows.unique().to_list())
    names = ", ".join(check.labels.get(f, f) for f in identity_fields)
    check.where(
        identity_fields[0],
        none,
        f"no usable identity: give at least one of {names} that is not empty or a placeholder "
        "(null, 0, 13800000000 …), so re-imports find the same customer",
        label=names,
    )


def _output_columns(kind: ImportKind, check: _Checker) -> list[pl.Series]:
    n = check.rows.len()
    columns = [check.rows.rename(ROW_NUMBER)]
    for field, dtype in {**dict.fromkeys(IDENTITY_FIELDS, pl.Utf8), **FIELDS_BY_KIND[kind]}.items():
        series = check.out.get(field)
        columns.append(
            series.cast(dtype).rename(field)
            if series is not None
            else pl.repeat(None, n, dtype=dtype, eager=True).rename(field)
        )
    known = {c.name for c in columns}
    for field in check.frame.columns:
        if field not in known and field in check.out:
            columns.append(check.out[field].rename(field))
    return columns


def _validate_frame(
    frame: pl.DataFrame,
    raw: pl.DataFrame,
    labels: dict[str, str],
    kind: ImportKind,
    *,
    units: Mapping[str, Unit],
    known_channels: Mapping[str, str],
    known_stores: Collection[str],
    identity_denylist: Sequence[str],
    workspace_timezone: str,
    now: datetime | None,
) -> tuple[pl.DataFrame, list[Reject]]:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    check = _Checker(frame, labels, raw)
    identity_fields = _check_common(
        check,
        kind,
        known_channels=known_channels,
        identity_denylist=identity_denylist,
        zone=workspace_timezone,
        now=now,
    )
    if kind is ImportKind.ORDERS:
        _check_orders(check, known_stores, units)
    elif kind is ImportKind.EVENTS:
        _check_events(check)
    else:
        _check_customers(check, now, workspace_timezone)
    _check_identity_present(check, identity_fields)
    rows = pl.DataFrame(_output_columns(kind, check))
    if not check.problems:
        return rows, []
    # within a row, problems are listed in the order of the file's columns
    position = {labels.get(f, f): i for i, f in enumerate(frame.columns)}
    problems = (
        pl.concat(check.problems)
        .with_row_index("order")
        .with_columns(position=pl.col("column").replace_strict(position, default=len(position)))
        .sort(["row_number", "position", "order"])
    )
    rows = rows.filter(~pl.col(ROW_NUMBER).is_in(problems["row_number"].unique().to_list()))
    rejects = [
        Reject(row_number=r, column=c, value=v, reason=why)
        for r, c, v, why in problems.select("row_number", "column", "value", "reason").iter_rows()
    ]
    return rows, rejects


def _check_mapping(columns: Sequence[str], kind: ImportKind, mapping: Mapping[str, str]) -> None:
    targets: dict[str, str] = {}
    for column, field in mapping.items():
        if column not in columns:
            raise ValidationFailed(
                f"the mapping names a column {column!r} that is not in the file",
                where=f"mapping[{column!r}]",
                hint=f"the file's columns are: {', '.join(columns)}",
            )
        if not mapping_rules.is_known_field(field, kind):
            raise ValidationFailed(
                f"{field!r} is not a field of a {kind.value} import",
                where=f"mapping[{column!r}]",
                hint=f"fields: {', '.join(mapping_rules.known_fields(kind))}, or attr:/prop:/identity:/consent:",
            )
        if field in targets:
            raise ValidationFailed(
                f"columns {targets[field]!r} and {column!r} are both mapped to {field!r}",
                where=f"mapping[{column!r}]",
                hint="map one of them to another field or leave it out",
            )
        targets[field] = column
    _check_required(kind, targets)


def _check_required(kind: ImportKind, targets: Mapping[str, str]) -> None:
    missing = [f for f in REQUIRED_FIELDS[kind] if f not in targets]
    if missing:
        raise ValidationFailed(
            f"no column is mapped to {', '.join(missing)}, which a {kind.value} import needs",
            where="mapping",
            hint="map the columns holding them (e.g. 订单号 → external_id, 下单时间 → placed_at, 实付金额 → paid_cents)",
        )
    if not any(f in IDENTITY_FIELDS or f.startswith(CUSTOM_IDENTITY_PREFIX) for f in targets):
        raise ValidationFailed(
            "no column holds an identity (phone, email, member id, WeChat/WeCom/Douyin id)",
            where="mapping",
            hint="map a column to phone, email, shop_member_id, … so each row can be tied to a customer",
        )


def _stripped(frame: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    stripped = pl.col(fields).str.strip_chars()
    return frame.with_columns(pl.when(stripped != "").then(stripped).name.keep())


def validate(
    table: RawTable,
    kind: ImportKind,
    mapping: dict[str, str],
    *,
    known_channels: dict[str, str],
    known_stores: set[str],
    identity_denylist: Sequence[str] = (),
    workspace_timezone: str = "Asia/Shanghai",
    now: datetime | None = None,
) -> ValidatedBatch:
    """Normalise the mapped columns of `table` and split its rows into good rows and rejects.

    `mapping` is source column -> canonical field (see `mapping.detect`); `known_channels` maps a
    lower-cased channel key, name or alias to its key; `known_stores` holds store codes. Amounts are yuan
    text, turned into exact integer cents. Naive times are in `workspace_timezone`. A row with problems
    yields one `Reject` per problem (row number, source column, value, reason) and is left out of `rows`.
    A mapping that lacks a required field or any identity raises `ValidationFailed`.
    """
    _check_mapping(table.columns, kind, mapping)
    fields = list(mapping.values())
    renamed = table.rows.select(
        pl.col(ROW_NUMBER), *[pl.col(column).cast(pl.Utf8).alias(field) for column, field in mapping.items()]
    )
    rows, rejects = _validate_frame(
        _stripped(renamed, fields),
        renamed,
        {field: column for column, field in mapping.items()},
        kind,
        units={},
        known_channels=known_channels,
        known_stores=known_stores,
        identity_denylist=identity_denylist,
        workspace_timezone=workspace_timezone,
        now=now,
    )
    return ValidatedBatch(
        kind=kind,
        rows=rows,
        rejects=rejects,
        total_rows=table.rows.height,
        mapping=dict(mapping),
        encoding=table.encoding,
    )


def _record_fields(key: str, kind: ImportKind) -> tuple[str, Unit]:
    """The canonical field a record key feeds, and the unit of money it is given in."""
    if key in YUAN_KEYS and kind is ImportKind.ORDERS:
        return YUAN_KEYS[key], "yuan"
    if key in MONEY_FIELDS and kind is ImportKind.ORDERS:
        return key, "cents"
    if mapping_rules.is_known_field(key, kind):
        return key, "yuan"
    choices = [*mapping_rules.known_fields(kind), *(YUAN_KEYS if kind is ImportKind.ORDERS else ())]
    close = difflib.get_close_matches(key, choices, n=1)
    raise ValidationFailed(
        f"{key!r} is not a field of a {kind.value} record",
        where=f"records[*].{key}",
        hint=(f"did you mean {close[0]!r}? " if close else "")
        + "use canonical field names, attr:<name>, prop:<name>, identity:<kind> or consent:<channel>",
    )


def _flatten_record(record: Mapping[str, Any], kind: ImportKind) -> dict[str, Any]:
    """Nested `identities` and `attributes` objects become identity and attr: fields."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == "identities" and isinstance(value, Mapping):
            for identity_kind, identity_value in value.items():
                name = (
                    identity_kind
                    if identity_kind in IDENTITY_FIELDS
                    else CUSTOM_IDENTITY_PREFIX + identity_kind
                )
                flat[name] = identity_value
        elif key == "attributes" and isinstance(value, Mapping) and kind is ImportKind.CUSTOMERS:
            for attr, attr_value in value.items():
                flat[ATTRIBUTE_PREFIX + str(attr)] = attr_value
        else:
            flat[str(key)] = value
    return flat


def validate_records(
    records: list[dict[str, Any]],
    kind: ImportKind,
    *,
    known_channels: dict[str, str],
    known_stores: set[str],
    identity_denylist: Sequence[str] = (),
    workspace_timezone: str = "Asia/Shanghai",
    now: datetime | None = None,
) -> ValidatedBatch:
    """Validate JSON records (batch API, webhook) that use canonical field names; row_number = index + 1.

    Money: `paid_cents` (and every other `*_cents` field) takes integer cents; `paid` / `paid_amount`
    (`total`, `discount`, `refunded` / `refund`, `unit_price`, `line_amount`, each also with `_amount`)
    take yuan as a string or number ("12.50", 12.5). One batch uses one spelling per field. Nested
    `identities` ({"phone": …, "member_no": …}) and, for customers, `attributes` objects are accepted;
    nested values elsewhere are kept as JSON text. Unknown keys raise `ValidationFailed`.
    """
    flat = [_flatten_record(r, kind) if isinstance(r, Mapping) else r for r in records]
    for index, record in enumerate(flat):
        if not isinstance(record, Mapping):
            raise ValidationFailed(
                f"record {index + 1} is not a JSON object",
                where=f"records[{index}]",
                hint="send a list of objects",
            )
    keys: dict[str, None] = {}
    for record in flat:
        keys.update(dict.fromkeys(record))
    key_fields: dict[str, tuple[str, Unit]] = {key: _record_fields(key, kind) for key in keys}
    targets: dict[str, str] = {}
    for key, (field, _) in key_fields.items():
        if field in targets:
            raise ValidationFailed(
                f"records give {field!r} both as {targets[field]!r} and as {key!r}",
                where=f"records[*].{key}",
                hint="use one spelling per field in a batch (integer cents in *_cents, or yuan)",
            )
        targets[field] = key
    _check_required(kind, targets)
    columns: dict[str, pl.Series] = {
        ROW_NUMBER: pl.Series(ROW_NUMBER, range(1, len(flat) + 1), dtype=pl.Int64)
    }
    for key, (field, _) in key_fields.items():
        columns[field] = pl.Series(field, [cell_text(r.get(key)) for r in flat], dtype=pl.Utf8)
    frame = pl.DataFrame(columns)
    fields = [f for f in frame.columns if f != ROW_NUMBER]
    rows, rejects = _validate_frame(
        _stripped(frame, fields) if fields else frame,
        frame,
        {field: key for key, (field, _) in key_fields.items()},
        kind,
        units={field: unit for field, unit in key_fields.values()},
        known_channels=known_channels,
        known_stores=known_stores,
        identity_denylist=identity_denylist,
        workspace_timezone=workspace_timezone,
        now=now,
    )
    return ValidatedBatch(
        kind=kind,
        rows=rows,
        rejects=rejects,
        total_rows=len(flat),
        mapping={key: field for key, (field, _) in key_fields.items()},
        encoding="json",
    )
