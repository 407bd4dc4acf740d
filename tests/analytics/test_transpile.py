"""PostgreSQL statements become Spark SQL: parameters as literals, the forms Spark lacks rewritten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from siyu.analytics.transpile import to_spark_sql
from siyu.core.errors import ValidationFailed


def test_a_difference_of_timestamps_in_seconds_becomes_microseconds_as_double() -> None:
    sql = to_spark_sql("SELECT EXTRACT(epoch FROM a.placed_at - a.previous) / 86400.0 FROM t AS a")
    assert "UNIX_MICROS(a.placed_at) - UNIX_MICROS(a.previous)" in sql and "1e6" in sql
    assert "EXTRACT" not in sql.upper()


def test_a_wall_clock_in_a_zone_inside_an_epoch_is_rewritten_too() -> None:
    sql = to_spark_sql(
        "SELECT EXTRACT(epoch FROM date_trunc('day', timezone(:zone, t.at))) FROM t",
        {"zone": "Asia/Shanghai"},
    )
    assert "FROM_UTC_TIMESTAMP(t.at, 'Asia/Shanghai')" in sql and "TIMEZONE" not in sql.upper()


def test_parameters_become_literals_and_times_utc_instants() -> None:
    at = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    sql = to_spark_sql(
        "SELECT 1 FROM t WHERE t.at >= :at AND t.name IN (:a, :b) AND t.n = :n",
        {"at": at, "a": "it's", "b": "x", "n": 3},
    )
    assert "CAST('2025-12-31 16:00:00.000000+00:00' AS TIMESTAMP)" in sql
    assert "'it\\'s'" in sql and "t.n = 3" in sql


def test_a_naive_time_or_a_missing_parameter_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="naive"):
        to_spark_sql("SELECT :at", {"at": datetime(2026, 1, 1)})
    with pytest.raises(ValidationFailed, match="no value"):
        to_spark_sql("SELECT :missing", {})
    assert "2026" in to_spark_sql("SELECT :at", {"at": datetime(2026, 1, 1, tzinfo=UTC)})
