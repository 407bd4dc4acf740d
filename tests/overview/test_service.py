"""The overview figures: counts, net revenue after refunds, per channel per month in the workspace zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.lifecycle import service as lifecycle
from siyu.metrics import service as metrics
from siyu.overview import service as overview
from siyu.rfm import service as rfm
from tests.factories import make_channel, make_customer, make_member, make_order
from tests.overview.world import build_world

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_overview_groups_net_revenue_by_channel_and_month(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.ANALYST).actor
        douyin = make_channel(session, workspace_id=workspace_id, key="douyin-o", name="抖音")
        store = make_channel(
            session, workspace_id=workspace_id, key="store-o", name="门店", source_type="store"
        )
        customer = make_customer(session, workspace_id=workspace_id)
        make_customer(session, workspace_id=workspace_id)

        def order(cents: int, channel_id: int, at: datetime, refunded: int = 0, status: str = "paid") -> None:
            make_order(
                session,
                workspace_id=workspace_id,
                customer_id=customer.id,
                paid_cents=cents,
                refunded_cents=refunded,
                status=status,
                channel_id=channel_id,
                placed_at=at,
            )

        order(1000, douyin.id, datetime(2026, 1, 10, 4, tzinfo=UTC))
        # 2026-01-31 17:00 UTC is 1 February 01:00 in Shanghai: counted in February
        order(2000, douyin.id, datetime(2026, 1, 31, 17, tzinfo=UTC))
        order(5000, store.id, datetime(2026, 2, 3, 4, tzinfo=UTC), refunded=1500, status="partially_refunded")
        order(700, store.id, datetime(2025, 12, 31, 16, 30, tzinfo=UTC))  # 2026-01-01 in Shanghai
        order(9900, store.id, datetime(2025, 11, 30, 4, tzinfo=UTC))  # before the period
    with db.reader() as session:
        figures = overview.get_overview(session, actor=actor, months=3, today=date(2026, 2, 20))
    assert figures.months == [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    assert figures.customers == 2
    assert figures.orders == 5
    assert figures.period_orders == 4
    assert figures.net_revenue_cents == 1000 + 2000 + 3500 + 700
    series = {s.channel_key: s.net_revenue_cents for s in figures.series}
    assert series == {"douyin-o": [0, 1000, 2000], "store-o": [0, 700, 3500]}
    assert [s.channel_key for s in figures.series] == ["store-o", "douyin-o"]  # biggest first
    assert figures.month_totals_cents == [0, 1700, 5500]


def test_overview_refuses_a_silly_period(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id).actor
        with pytest.raises(ValidationFailed) as refused:
            overview.get_overview(session, actor=actor, months=0)
    assert refused.value.where == "months"


def test_overview_of_data_that_stops_early_ends_at_the_newest_order(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.ANALYST).actor
        channel = make_channel(session, workspace_id=workspace_id, key="old-shop", name="旧店")
        customer = make_customer(session, workspace_id=workspace_id)
        for at, cents in [
            (datetime(2021, 5, 2, 4, tzinfo=UTC), 800),
            (datetime(2021, 3, 9, 4, tzinfo=UTC), 300),
        ]:
            make_order(
                session,
                workspace_id=workspace_id,
                customer_id=customer.id,
                paid_cents=cents,
                channel_id=channel.id,
                placed_at=at,
            )
    with db.reader() as session:
        figures = overview.get_overview(session, actor=actor, months=3)
    assert figures.data_ends_at == date(2021, 5, 2)
    assert figures.months == [date(2021, 3, 1), date(2021, 4, 1), date(2021, 5, 1)]
    assert figures.month_totals_cents == [300, 0, 800]


def test_overview_of_current_data_ends_today(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.ANALYST).actor
        customer = make_customer(session, workspace_id=workspace_id)
        make_order(session, workspace_id=workspace_id, customer_id=customer.id, paid_cents=100)
    with db.reader() as session:
        figures = overview.get_overview(session, actor=actor, months=2)
    assert figures.data_ends_at is None
    assert figures.period_orders == 1


# --- the dashboard --------------------------------------------------------------------------------


def test_the_dashboard_agrees_with_the_services_it_draws_from(db: Database, workspace_id: int) -> None:
    actor = build_world(db, workspace_id)
    with db.reader() as session:
        board = overview.get_dashboard(session, actor=actor, months=4, today=date(2026, 4, 30))
        start, end = datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2026, 5, 1, tzinfo=SHANGHAI)
        points = metrics.trend(session, actor=actor, period="month", last=date(2026, 4, 30), points=4)
        share = metrics.private_domain_share(session, actor=actor, start=start, end=end)
        roi = metrics.channel_roi(session, actor=actor, start=start, end=end)
        cohorts = metrics.cohort_table(
            session, actor=actor, period="month", first=date(2025, 11, 1), last=date(2026, 4, 30), horizon=6
        )
        layers = rfm.layer_summary(session, actor=actor)
        stages = lifecycle.stage_counts(session, actor=actor)
    assert board.trend_months == ["2026-01", "2026-02", "2026-03", "2026-04"]
    for card in board.cards:
        values = [getattr(p, card.key) for p in points]
        assert card.trend == values, card.key
        newest = max(i for i, v in enumerate(values) if v is not None)
        assert (card.period, card.value) == (board.trend_months[newest], values[newest])
        if newest and values[newest - 1] is not None:
            assert card.change == pytest.approx(values[newest] - values[newest - 1])  # type: ignore[operator]
    assert any(card.value is not None for card in board.cards)
    assert board.share == share and share.gmv_share is not None
    assert board.roi == roi and any(row.cost_cents == 20_000 for row in roi)
    assert board.cohorts == cohorts and [row.cohort for row in cohorts] == [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
    assert board.layers == layers and board.layer_money_cents == sum(x.monetary_cents for x in layers) > 0
    assert board.stages == stages and sum(stages.values()) > 0


def test_a_card_without_a_month_before_shows_no_change() -> None:
    card = overview._card("retention", ["2026-01", "2026-02", "2026-03"], [None, 0.5, None])
    assert (card.period, card.value, card.previous, card.change) == ("2026-02", 0.5, None, None)
    card = overview._card("conversion", ["2026-01", "2026-02"], [0.25, 0.5])
    assert (card.period, card.previous, card.change) == ("2026-02", 0.25, 0.25)
    assert overview._card("repurchase", ["2026-01"], [None]).value is None
