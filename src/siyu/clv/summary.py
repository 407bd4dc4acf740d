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
    # one row per customer and day: same-day purchases are one purchase
    daily = transactions.group_by("customer_id", "date").agg(pl.col("amount").sum())
    last_date = daily["date"].max()
    assert isinstance(last_date, date)
    calibration_end = calibration_end or last_date
    if observation_end is not None and observation_end < calibration_end:
        raise ValidationFailed(
            f"the observation end {observation_end} is before the calibration end {calibration_end}",
            where="observation_end",
        )
    end = pl.lit(calibration_end)
    calibration = daily.filter(pl.col("date") <= end)
    if calibration.height == 0:
        raise ValidationFailed(
            f"no purchase on or before the calibration end {calibration_end}", where="calibration_end"
        )
    per_customer = (
        calibration.group_by("customer_id")
        .agg(
            first=pl.col("date").min(),
            last=pl.col("date").max(),
            purchases=pl.len(),
            total=pl.col("amount").sum(),
            first_amount=pl.col("amount").sort_by("date").first(),
        )
        .sort("customer_id")
    )
    to_units = 1.0 / days
    frame = per_customer.select(
        "customer_id",
        frequency=(pl.col("purchases") - 1).cast(pl.Float64),
        recency=(pl.col("last") - pl.col("first")).dt.total_days().cast(pl.Float64) * to_units,
        T=(end - pl.col("first")).dt.total_days().cast(pl.Float64) * to_units,
        monetary_value=pl.when(pl.col("purchases") > 1)
        .then((pl.col("total") - pl.col("first_amount")) / (pl.col("purchases") - 1))
        .otherwise(0.0)
        .cast(pl.Float64),
    )
    holdout = None
    length = None
    if observation_end is not None:
        counts = (
            daily.filter((pl.col("date") > end) & (pl.col("date") <= pl.lit(observation_end)))
            .group_by("customer_id")
            .agg(holdout=pl.len())
        )
        holdout = (
            frame.select("customer_id")
            .join(counts, on="customer_id", how="left")["holdout"]
            .fill_null(0)
            .cast(pl.Float64)
            .to_numpy()
        )
        length = (observation_end - calibration_end).days * to_units
    return PurchaseHistories(
        customer_ids=frame["customer_id"].to_numpy(),
        frequency=frame["frequency"].to_numpy(),
        recency=frame["recency"].to_numpy(),
        T=frame["T"].to_numpy(),
        monetary_value=frame["monetary_value"].to_numpy(),
        holdout_frequency=holdout,
        holdout_length=length,
    )


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
