"""The metrics on Apache Spark (local mode) over the Parquet export of a generated brand give the same
numbers as on the store they were exported from, SQLite and PostgreSQL: the same statements, compiled
for PostgreSQL and transpiled to Spark SQL, run through an ordinary SQLAlchemy session.

Counts, money and the ratios made of them are compared exactly. Mean numbers of days are computed in
SQL as floating point on every engine (SQLite's julianday, PostgreSQL's numeric epoch, Spark's
microseconds as DOUBLE) and are compared to 1e-9 relative."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.service import Actor
from siyu.channels.models import Channel
from siyu.metrics import service as metrics
from siyu.overview import service as overview
from siyu.segments.models import SegmentMembership
from tests.analytics.conftest import REACH_END, REACH_START, Brand

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]  # one worker starts the JVM

# the demo brand's history: 2023-07-01 … 2025-06-30, "today" 2025-07-01 (Asia/Shanghai)
START = datetime(2024, 7, 1, tzinfo=UTC)
END = datetime(2025, 7, 1, tzinfo=UTC)
TODAY = date(2025, 7, 1)
FLOAT_MEANS = {"mean_interval_days", "mean_days_to_convert", "mean_days_to_purchase"}


def assert_same(on_store: Any, on_spark: Any, where: str = "") -> None:
    """Equal field by field; the SQL-computed mean day counts to 1e-9 relative."""
    if dataclasses.is_dataclass(on_store) and not isinstance(on_store, type):
        assert type(on_spark) is type(on_store), where
        for field in dataclasses.fields(on_store):
            store_value, spark_value = getattr(on_store, field.name), getattr(on_spark, field.name)
            path = f"{where}.{field.name}"
            if field.name in FLOAT_MEANS and store_value is not None:
                assert spark_value == pytest.approx(store_value, rel=1e-9), path
            else:
                assert_same(store_value, spark_value, path)
    elif isinstance(on_store, list | tuple):
        assert len(on_spark) == len(on_store), where
        for index, (a, b) in enumerate(zip(on_store, on_spark, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    else:
        assert on_spark == on_store, where


def both(brand: Brand, compute: Callable[[Session, Actor], Any]) -> Any:
    """The metric on the store and on Spark, asserted the same; the store's result."""
    with brand.database.reader() as session:
        on_store = compute(session, brand.actor)
    with brand.spark_store.reader() as session:
        on_spark = compute(session, brand.spark_store.actor())
    assert_same(on_store, on_spark)
    return on_store


def test_the_spark_session_reads_the_export_and_says_it_runs_on_spark(brand: Brand) -> None:
    assert brand.spark_store.actor().workspace_id == brand.actor.workspace_id
    with brand.spark_store.reader() as session:
        assert session.get_bind().dialect.driver == "spark"
        channels = session.scalars(
            select(Channel.key).where(Channel.workspace_id == brand.actor.workspace_id)
        )
        assert "store" in set(channels)


def test_repurchase_with_intervals_and_filters(brand: Brand) -> None:
    result = both(brand, lambda s, a: metrics.repurchase(s, actor=a, start=START, end=END))
    assert result.repeat_buyers > 0 and sum(b.intervals for b in result.intervals) > 0
    with brand.database.reader() as session:
        store_channel = session.scalar(
            select(Channel.id).where(Channel.workspace_id == brand.actor.workspace_id, Channel.key == "store")
        )
        segment_id = session.scalar(
            select(SegmentMembership.segment_id).where(
                SegmentMembership.workspace_id == brand.actor.workspace_id,
                SegmentMembership.left_at.is_(None),
            )
        )
    assert store_channel is not None and segment_id is not None
    for filters in (
        metrics.MetricFilter(channel_id=store_channel),
        metrics.MetricFilter(segment_id=segment_id),
    ):
        narrowed = both(
            brand, lambda s, a, f=filters: metrics.repurchase(s, actor=a, start=START, end=END, filters=f)
        )
        assert 0 < narrowed.buyers < result.buyers


def test_private_domain_share_of_gmv(brand: Brand) -> None:
    share = both(brand, lambda s, a: metrics.private_domain_share(s, actor=a, start=START, end=END))
    assert share.private.gmv_cents > 0 and share.others.gmv_cents > 0


@pytest.mark.parametrize("attribution", ["first_touch", "last_touch"])
def test_channel_roi_and_cac(brand: Brand, attribution: str) -> None:
    rows = both(
        brand,
        lambda s, a: metrics.channel_roi(s, actor=a, start=START, end=END, attribution=attribution),  # type: ignore[arg-type]
    )
    assert any(r.attributed_revenue_cents > 0 and r.cost_cents > 0 and r.cac_cents for r in rows)


@pytest.mark.parametrize("by", ["month", "channel"])
def test_ltv_by_cohort(brand: Brand, by: str) -> None:
    cohorts = both(
        brand,
        lambda s, a: metrics.ltv_by_cohort(
            s,
            actor=a,
            first_month=date(2024, 1, 1),
            last_month=date(2024, 6, 1),
            by=by,
            today=TODAY,  # type: ignore[arg-type]
        ),
    )
    assert cohorts and all(c.ltv_cents[-1] > 0 for c in cohorts if c.customers >= 5)


def test_conversion_plain_retained_and_to_an_event(brand: Brand) -> None:
    plain = both(brand, lambda s, a: metrics.conversion(s, actor=a, start=START, end=END))
    assert plain.converted > 0
    retained = both(
        brand, lambda s, a: metrics.conversion(s, actor=a, start=START, end=END, retained_days=30)
    )
    assert retained.retained is not None and 0 < retained.retained < plain.joined
    both(brand, lambda s, a: metrics.conversion(s, actor=a, start=START, end=END, goal="coupon_view"))


def test_pass_through_per_channel_and_per_live_code(brand: Brand) -> None:
    historic = both(brand, lambda s, a: metrics.pass_through(s, actor=a, start=START, end=END))
    assert historic.joined > 0
    # the demo's live codes were scanned in the weeks before it was built
    recent = both(
        brand,
        lambda s, a: metrics.pass_through(
            s, actor=a, start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC)
        ),
    )
    assert recent.codes and any(code.reached > 0 for code in recent.codes)


@pytest.mark.parametrize("period", ["week", "month"])
def test_retention_cohort_tables(brand: Brand, period: str) -> None:
    first = date(2025, 3, 1) if period == "week" else date(2024, 7, 1)
    rows = both(
        brand,
        lambda s, a: metrics.cohort_table(
            s,
            actor=a,
            period=period,
            first=first,
            last=date(2025, 5, 31),
            horizon=4,
            now=END,  # type: ignore[arg-type]
        ),
    )
    assert sum(sum(r.reachable) for r in rows) > 0 and sum(sum(r.active) for r in rows) > 0


def test_monthly_retention_by_activity(brand: Brand) -> None:
    for activity in ("purchase", "any"):
        rows = both(
            brand,
            lambda s, a, activity=activity: metrics.retention(
                s,
                actor=a,
                first_month=date(2024, 7, 1),
                last_month=date(2025, 3, 1),
                activity=activity,
                today=TODAY,  # type: ignore[arg-type]
            ),
        )
        assert sum(r.active[1] for r in rows) > 0


def test_dormant_reactivation(brand: Brand) -> None:
    result = both(
        brand, lambda s, a: metrics.dormant_reactivation(s, actor=a, start=REACH_START, end=REACH_END)
    )
    assert 0 < result.reactivated < result.reached_dormant


@pytest.mark.parametrize("breakdown", [None, "channel"])
def test_funnel(brand: Brand, breakdown: str | None) -> None:
    result = both(
        brand,
        lambda s, a: metrics.funnel(
            s,
            actor=a,
            steps=["mini_program_visit", "coupon_view", "purchase"],
            start=START,
            end=END,
            window_days=30,
            breakdown=breakdown,  # type: ignore[arg-type]
        ),
    )
    assert result.steps[-1].customers > 0


def test_trend_and_overview(brand: Brand) -> None:
    points = both(
        brand,
        lambda s, a: metrics.trend(s, actor=a, period="month", last=date(2025, 6, 1), points=3, now=END),
    )
    assert any(p.repurchase for p in points)
    figures = both(brand, lambda s, a: overview.get_overview(s, actor=a, months=6, today=TODAY))
    assert figures.start is not None
