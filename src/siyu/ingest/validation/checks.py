"""The reject rules: a `Checker` holds one batch's canonical columns, typed outputs and problems.

Rules common to every kind (times, channel, identities, consent) and those of customers, orders and events.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

from siyu.customers import identity_values as iv
from siyu.ingest.reading import ROW_NUMBER
from siyu.ingest.schemas import (
    ATTRIBUTE_PREFIX,
    CONSENT_PREFIX,
    CUSTOM_IDENTITY_PREFIX,
    IDENTITY_FIELDS,
    PROPERTY_PREFIX,
    ImportKind,
)
from siyu.ingest.validation.identities import parse_emails, parse_ids, parse_member_emails, parse_phones
from siyu.ingest.validation.parsing import (
    CONSENT_WORDS,
    CURRENCY_WORDS,
    GENDER_WORDS,
    MONEY_FIELDS,
    STATUS_WORDS,
    Unit,
    int_values,
    parse_cents,
    words,
)
from siyu.ingest.validation.times import FUTURE_REASON, FUTURE_TOLERANCE, parse_times

REQUIRED_FIELDS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.CUSTOMERS: (),
    ImportKind.ORDERS: ("external_id", "placed_at", "paid_cents"),
    ImportKind.EVENTS: ("type", "occurred_at"),
}


class Checker:
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


def _status_and_refund(check: Checker) -> None:
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


def check_orders(check: Checker, known_stores: Collection[str], units: Mapping[str, Unit]) -> None:
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
        status = words(check.text("status"), STATUS_WORDS)
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
    for field in ("sku", "product_name", "category", "coupon_code"):
        if check.has(field):
            check.out[field] = check.text(field)
    if check.has("quantity"):
        quantity, problem = int_values(check.text("quantity"), "quantity", 0)
        check.out["quantity"] = quantity
        check.flag("quantity", problem)
    if check.has("line_no"):
        line_no, problem = int_values(check.text("line_no"), "line number", 1)
        check.out["line_no"] = line_no
        check.flag("line_no", problem)
    elif "external_id" in check.out:
        check.out["line_no"] = line_numbers(check.out["external_id"])


def check_events(check: Checker) -> None:
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


def check_customers(check: Checker, now: datetime, zone: str) -> None:
    for field in ("name", "city"):
        if check.has(field):
            check.out[field] = check.text(field)
    if check.has("gender"):
        check.out["gender"] = words(check.text("gender"), GENDER_WORDS).fill_null("unknown")
    if check.has("birthday"):
        times, problem = parse_times(check.text("birthday"), zone)
        birthday = times.dt.convert_time_zone(zone).dt.date()
        check.out["birthday"] = birthday
        check.flag("birthday", problem)
        check.where(
            "birthday", (birthday > now.astimezone(ZoneInfo(zone)).date()).fill_null(False), FUTURE_REASON
        )
    if check.has("owner_email"):
        owner, problem = parse_member_emails(check.text("owner_email"))
        check.out["owner_email"] = owner
        check.flag("owner_email", problem)


def check_common(
    check: Checker,
    kind: ImportKind,
    *,
    known_channels: Mapping[str, str],
    identity_denylist: Sequence[str],
    zone: str,
    now: datetime,
) -> list[str]:
    """Times, channel, identities, consent and free columns; returns the identity columns produced."""
    limit = now + FUTURE_TOLERANCE
    for field in ("placed_at", "occurred_at", "created_at", "consent_at"):
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
            consent = words(check.text(field), CONSENT_WORDS)
            check.out[field] = consent
            check.where(
                field,
                consent.is_null() & check.text(field).is_not_null(),
                "unknown consent value: use yes/no (是/否) or granted/withdrawn",
            )
        elif field.startswith((ATTRIBUTE_PREFIX, PROPERTY_PREFIX)):
            check.out[field] = check.text(field)
    return identity_fields


def check_identity_present(check: Checker, identity_fields: list[str]) -> None:
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
