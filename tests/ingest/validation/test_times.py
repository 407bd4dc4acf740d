"""Dates with the day and month before the year are refused with a reason that says how to write them."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from siyu.ingest import validation
from siyu.ingest.mapping import detect
from siyu.ingest.reading import read_table
from siyu.ingest.schemas import ImportKind


@pytest.mark.parametrize(
    "text",
    [
        "05/03/2024", "5/3/2024", "05-03-2024", "05.03.2024", "05/03/24", "05-03-2024 14:03",
        "05/03/2024T14:03:00", "25/03/2024", "03/25/2024", "12/12/2024",
    ],
)  # fmt: skip
def test_year_last_dates_are_refused_as_ambiguous(text: str) -> None:
    values, problems = validation.parse_times(pl.Series([text]), "Asia/Shanghai")
    assert values.to_list() == [None]
    assert problems.to_list() == [validation.DAY_MONTH_REASON]
    assert "YYYY-MM-DD" in validation.DAY_MONTH_REASON


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024/05/03", datetime(2024, 5, 2, 16, 0, tzinfo=UTC)),  # year first: always year-month-day
        ("2024.5.3 08:00", datetime(2024, 5, 3, 0, 0, tzinfo=UTC)),
        ("03-May-2024", datetime(2024, 5, 2, 16, 0, tzinfo=UTC)),  # a month name is not ambiguous
    ],
)
def test_year_first_and_month_name_dates_are_read(text: str, expected: datetime) -> None:
    values, problems = validation.parse_times(pl.Series([text]), "Asia/Shanghai")
    assert (values.to_list(), problems.to_list()) == ([expected], [None])


def test_other_unreadable_times_keep_the_general_reason() -> None:
    _, problems = validation.parse_times(pl.Series(["next tuesday", "2024-13-01", "1/2"]), "Asia/Shanghai")
    assert problems.to_list() == [validation.TIME_REASON] * 3


def test_an_ambiguous_order_date_is_a_row_reject() -> None:
    csv = "手机号,订单号,实付金额,下单时间\n13800138001,A1,12.50,2024-03-05 14:03\n13800138002,A2,8,05/03/2024\n"
    table = read_table(csv.encode(), filename="orders.csv")
    batch = validation.validate(
        table,
        ImportKind.ORDERS,
        detect(table.columns, ImportKind.ORDERS),
        known_channels={},
        known_stores=set(),
        now=datetime(2024, 6, 1, tzinfo=UTC),
    )
    assert batch.rows["external_id"].to_list() == ["A1"]
    assert [r.to_dict() for r in batch.rejects] == [
        {"row": 3, "column": "下单时间", "value": "05/03/2024", "reason": validation.DAY_MONTH_REASON}
    ]
