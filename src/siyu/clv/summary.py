"""From a transaction log to what the purchase models read: per customer, repeat purchases (frequency),
the time of the last one (recency), the time observed (T) and the average repeat spend.

Conventions of the literature (Fader, Hardie and Lee 2005), and of the CDNOW reference values: purchases
on the same day are one purchase; time runs from each customer's first purchase, in days or weeks
(days / 7); the average spend counts the repeat purchases only, not the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from siyu.core.errors import ValidationFailed

UNITS = {"day": 1.0, "week": 7.0}


@dataclass(frozen=True)
class PurchaseHistories:
    """One entry per customer, in the order of `customer_ids`."""

    customer_ids: np.ndarray
    frequency: np.ndarray  # repeat purchases in the calibration period
    recency: np.ndarray  # first to last purchase, in units
    T: np.ndarray  # first purchase to the end of the calibration period, in units
    monetary_value: np.ndarray  # average repeat purchase value; 0 without repeats
    holdout_frequency: np.ndarray | None = None  # purchases after the calibration period, if asked
    holdout_length: float | None = None  # units in the holdout period

    def __len__(self) -> int:
        return len(self.customer_ids)


def _unit_days(unit: str) -> float:
    try:
        return UNITS[unit]
    except KeyError:
        raise ValidationFailed(
            f"unknown time unit {unit!r}", where="unit", hint=f"use one of {', '.join(UNITS)}"
        ) from None


def summarise(
    transactions: pl.DataFrame,
    *,
    calibration_end: date | None = None,
    observation_end: date | None = None,
    unit: str = "week",
) -> PurchaseHistories:
    """Summarise a transaction log with columns `customer_id`, `date` (a polars Date) and `amount`.

    `calibration_end` (inclusive, default: the last transaction date) closes the period the models are
    fitted on; customers whose first purchase falls after it are left out. With `observation_end`, the
    purchases after `calibration_end` up to it are counted per customer as the holdout.
    """
    days = _unit_days(unit)
    missing = {"customer_id", "date", "amount"} - set(transactions.columns)
    if missing:
        raise ValidationFailed(
            f"the transactions lack the column(s) {', '.join(sorted(missing))}",
            where="transactions",
            hint="give customer_id, date and amount",
        )
    if transactions.height == 0:
        raise ValidationFailed("there are no transactions to summarise", where="transactions")
    customer_codes, customer_values = _codes(transactions["customer_id"])
    day = transactions["date"].cast(pl.Int32).to_numpy().astype(np.int64)
    first_day = int(day.min())
    calibration_end = calibration_end or _to_date(int(day.max()))
    if observation_end is not None and observation_end < calibration_end:
        raise ValidationFailed(
            f"the observation end {observation_end} is before the calibration end {calibration_end}",
            where="observation_end",
        )
    end_day = _to_epoch(calibration_end)
    # One sort of one integer key (customer, day) orders the log; runs of equal keys are the purchase
    # days, runs of equal customers the customers. Everything else is a pass over the sorted arrays.
    key = (customer_codes << 21) | (day - first_day)
    order = pl.Series(key).arg_sort().to_numpy()
    key = key[order]
    amount = transactions["amount"].cast(pl.Float64).to_numpy()[order]
    new_day = np.empty(len(key), dtype=bool)
    new_day[0] = True
    np.not_equal(key[1:], key[:-1], out=new_day[1:])
    day_starts = np.flatnonzero(new_day)
    day_key = key[day_starts]
    day_amount = np.add.reduceat(amount, day_starts)  # same-day purchases are one purchase
    day_customer = day_key >> 21
    day_day = (day_key & ((1 << 21) - 1)) + first_day
    in_calibration = day_day <= end_day
    if not in_calibration.any():
        raise ValidationFailed(
            f"no purchase on or before the calibration end {calibration_end}", where="calibration_end"
        )
    cal_customer = day_customer[in_calibration]
    cal_day = day_day[in_calibration]
    cal_amount = day_amount[in_calibration]
    new_customer = np.empty(len(cal_customer), dtype=bool)
    new_customer[0] = True
    np.not_equal(cal_customer[1:], cal_customer[:-1], out=new_customer[1:])
    starts = np.flatnonzero(new_customer)
    ends = np.append(starts[1:], len(cal_customer)) - 1
    purchases = np.diff(np.append(starts, len(cal_customer)))
    first, last = cal_day[starts], cal_day[ends]
    repeat_total = np.add.reduceat(cal_amount, starts) - cal_amount[starts]
    repeats = purchases - 1
    to_units = 1.0 / days
    holdout = None
    length = None
    if observation_end is not None:
        in_holdout = ~in_calibration & (day_day <= _to_epoch(observation_end))
        counts = np.bincount(day_customer[in_holdout], minlength=int(customer_codes.max()) + 1)
        holdout = counts[cal_customer[starts]].astype(float)
        length = (observation_end - calibration_end).days * to_units
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(repeats > 0, repeat_total / np.maximum(repeats, 1), 0.0)
    return PurchaseHistories(
        customer_ids=customer_values[cal_customer[starts]],
        frequency=repeats.astype(float),
        recency=(last - first) * to_units,
        T=(end_day - first) * to_units,
        monetary_value=monetary,
        holdout_frequency=holdout,
        holdout_length=length,
    )


_EPOCH = date(1970, 1, 1)


def _to_epoch(day: date) -> int:
    return (day - _EPOCH).days


def _to_date(epoch_day: int) -> date:
    return date.fromordinal(_EPOCH.toordinal() + epoch_day)


def _codes(ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Dense integer codes of the customer ids, in the ids' sort order, and the id of each code."""
    if ids.dtype.is_integer():
        values = ids.cast(pl.Int64).to_numpy()
        low, high = int(values.min()), int(values.max())
        if high - low < 4 * len(values) + 1024:  # compact ids: an offset is a code, without hashing
            present = np.zeros(high - low + 1, dtype=bool)
            present[values - low] = True
            rank = np.cumsum(present) - 1
            return rank[values - low].astype(np.int64), np.flatnonzero(present) + low
    distinct = ids.unique().sort()
    codes = ids.replace_strict(distinct, pl.int_range(len(distinct), eager=True), return_dtype=pl.Int64)
    return codes.to_numpy(), distinct.to_numpy()


def read_transactions(path: str) -> pl.DataFrame:
    """Read a plain transaction file: a CSV with a header naming `customer_id`, `date` and `amount`
    (other columns are ignored), or the CDNOW whitespace format (`id sample_id YYYYMMDD count value`)."""
    with open(path, "rb") as handle:
        head = handle.read(4096).decode("utf-8-sig", errors="replace")
    first_line = head.splitlines()[0] if head else ""
    if "," in first_line:
        frame = pl.read_csv(path, infer_schema=False)
        columns = {name.strip().lower(): name for name in frame.columns}
        missing = [c for c in ("customer_id", "date", "amount") if c not in columns]
        if missing:
            raise ValidationFailed(
                f"the CSV header lacks {', '.join(missing)}",
                where=f"{path}, line 1",
                hint="name the columns customer_id, date (YYYY-MM-DD) and amount",
            )
        frame = frame.select(
            customer_id=pl.col(columns["customer_id"]),
            date=pl.col(columns["date"]).str.strip_chars(),
            amount=pl.col(columns["amount"]).str.strip_chars(),
        )
        first_data_line = 2
    else:
        with open(path, encoding="utf-8-sig") as lines:
            rows = [line.split() for line in lines if line.strip()]
        bad = next((i for i, row in enumerate(rows) if len(row) != 5), None)
        if bad is not None:
            raise ValidationFailed(
                "a line of the CDNOW format has not five fields",
                where=f"{path}, line {bad + 1}",
                hint="id, sample id, date YYYYMMDD, number of items, value — separated by spaces",
            )
        frame = pl.DataFrame(
            {
                "customer_id": [r[0] for r in rows],
                "date": [r[2] for r in rows],
                "amount": [r[4] for r in rows],
            }
        )
        first_data_line = 1
    dates = frame["date"].str.to_date("%Y-%m-%d", strict=False)
    if dates.null_count() > frame["date"].null_count():
        compact = frame["date"].str.to_date("%Y%m%d", strict=False)
        dates = dates.fill_null(compact)
    amounts = frame["amount"].cast(pl.Float64, strict=False)
    for name, parsed, raw in (("date", dates, frame["date"]), ("amount", amounts, frame["amount"])):
        bad_rows = (parsed.is_null() & raw.is_not_null()) | raw.is_null()
        if bad_rows.any():
            index = int(bad_rows.arg_true()[0])
            raise ValidationFailed(
                f"unreadable {name} {raw[index]!r}",
                where=f"{path}, line {index + first_data_line}, column {name}",
                hint="dates as YYYY-MM-DD or YYYYMMDD, amounts as numbers",
            )
    return pl.DataFrame({"customer_id": frame["customer_id"], "date": dates, "amount": amounts})
