"""Transaction logs to purchase histories: same-day purchases merged, time from the first purchase,
average repeat spend, the holdout count; bad files refused with where and how."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from siyu.clv.summary import PurchaseHistories, read_transactions, summarise
from siyu.core.errors import ValidationFailed


def _log(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "date": [date.fromisoformat(r[1]) for r in rows],
            "amount": [r[2] for r in rows],
        }
    )


def test_a_small_log_summarises_by_hand() -> None:
    log = _log(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-01", 5.0),  # same day: one purchase of 15
            ("a", "2024-01-15", 20.0),
            ("a", "2024-01-29", 40.0),
            ("b", "2024-01-08", 9.0),
            ("c", "2024-02-05", 7.0),  # after the calibration end: only in the holdout, not a customer
            ("a", "2024-02-12", 1.0),
            ("a", "2024-02-13", 1.0),
        ]
    )
    h = summarise(log, calibration_end=date(2024, 1, 29), observation_end=date(2024, 2, 26), unit="week")
    assert h.customer_ids.tolist() == ["a", "b"]
    assert h.frequency.tolist() == [2.0, 0.0]
    assert h.recency.tolist() == [4.0, 0.0]
    assert h.T.tolist() == [4.0, 3.0]
    assert h.monetary_value.tolist() == [30.0, 0.0]  # (20 + 40) / 2: the first purchase is not counted
    assert h.holdout_frequency is not None and h.holdout_frequency.tolist() == [2.0, 0.0]
    assert h.holdout_length == 4.0
    days = summarise(log, calibration_end=date(2024, 1, 29), unit="day")
    assert days.T.tolist() == [28.0, 21.0]


def test_cdnow_matches_the_published_summary(cdnow: PurchaseHistories) -> None:
    # FHL 2005: 2,357 customers, 1,411 without a repeat purchase in the 39 calibration weeks, 2,457
    # repeat purchases then and 1,882 in the 39 weeks after (4,339 by week 78, their figure 2);
    # customer 1 has x = 2, t_x = 30.43, T = 38.86
    assert len(cdnow) == 2357
    assert int((cdnow.frequency == 0).sum()) == 1411
    assert int(cdnow.frequency.sum()) == 2457
    assert cdnow.holdout_frequency is not None
    assert int(cdnow.holdout_frequency.sum()) == 1882
    assert cdnow.holdout_length == pytest.approx(39.0)
    assert cdnow.frequency[0] == 2
    assert cdnow.recency[0] == pytest.approx(30.43, abs=0.005)
    assert cdnow.T[0] == pytest.approx(38.86, abs=0.005)


def test_csv_transactions_are_read(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "Customer_ID,date,amount,store\nA,2024-01-01,10.5,s1\nA,2024-01-08,3,s1\n", encoding="utf-8"
    )
    log = read_transactions(str(path))
    assert log["amount"].to_list() == [10.5, 3.0]
    assert log["date"].to_list() == [date(2024, 1, 1), date(2024, 1, 8)]


@pytest.mark.parametrize(
    ("content", "message", "where"),
    [
        ("customer_id,day,amount\nA,2024-01-01,1\n", "lacks date", "line 1"),
        (
            "customer_id,date,amount\nA,2024-01-01,1\nB,01/02/2024,2\n",
            "unreadable date '01/02/2024'",
            "line 3",
        ),
        ("customer_id,date,amount\nA,2024-01-01,ten\n", "unreadable amount 'ten'", "line 2"),
        ("00001 0001 19970101 1\n", "not five fields", "line 1"),
    ],
)
def test_bad_files_say_what_and_where(tmp_path: Path, content: str, message: str, where: str) -> None:
    path = tmp_path / "tx.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValidationFailed, match=message) as caught:
        read_transactions(str(path))
    assert caught.value.where is not None and where in caught.value.where


def test_bad_arguments_are_refused() -> None:
    log = _log([("a", "2024-01-01", 1.0)])
    with pytest.raises(ValidationFailed, match="unknown time unit"):
        summarise(log, unit="month")
    with pytest.raises(ValidationFailed, match="no purchase on or before"):
        summarise(log, calibration_end=date(2023, 1, 1))
    with pytest.raises(ValidationFailed, match="before the calibration end"):
        summarise(log, calibration_end=date(2024, 1, 1), observation_end=date(2023, 12, 1))
    with pytest.raises(ValidationFailed, match="lack the column"):
        summarise(log.drop("amount"))
