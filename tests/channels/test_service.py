"""Channels, aliases for the importer, stores, and channel costs (overlaps and negatives refused)."""

from __future__ import annotations

from datetime import date

import pytest

from siyu.channels import service
from siyu.core.db import Database
from siyu.core.errors import Conflict, NotFound, ValidationFailed


def test_channel_aliases_map_every_spelling_to_the_key(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        service.create_channel(
            session,
            workspace_id=workspace_id,
            key="douyin",
            name="抖音",
            source_type="douyin",
            aliases=["DY", "Douyin"],
        )
        service.create_channel(
            session, workspace_id=workspace_id, key="store-sh-01", name="人民广场店", source_type="store"
        )
    with db.reader() as session:
        aliases = service.channel_aliases(session, workspace_id=workspace_id)
    assert aliases == {
        "douyin": "douyin",
        "抖音": "douyin",
        "dy": "douyin",
        "store-sh-01": "store-sh-01",
        "人民广场店": "store-sh-01",
    }


def test_channel_validation_and_clashes(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        service.create_channel(
            session, workspace_id=workspace_id, key="meituan", name="美团", source_type="meituan"
        )
    with db.transaction() as session, pytest.raises(ValidationFailed) as raised:
        service.create_channel(session, workspace_id=workspace_id, key="ads", name="Ads", source_type="tv")
    assert raised.value.where == "source_type" and "douyin" in (raised.value.hint or "")
    with db.transaction() as session, pytest.raises(ValidationFailed):
        service.create_channel(
            session, workspace_id=workspace_id, key="Bad Key!", name="x", source_type="ads"
        )
    with db.transaction() as session, pytest.raises(Conflict):
        service.create_channel(
            session,
            workspace_id=workspace_id,
            key="mt2",
            name="Meituan 2",
            source_type="meituan",
            aliases=["美团"],
        )


def test_update_and_archive(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        channel = service.create_channel(
            session, workspace_id=workspace_id, key="oa", name="公众号", source_type="official_account"
        )
    with db.transaction() as session:
        service.update_channel(
            session, workspace_id=workspace_id, channel_id=channel.id, name="服务号", aliases=["OA"]
        )
        service.archive_channel(session, workspace_id=workspace_id, channel_id=channel.id)
    with db.reader() as session:
        assert service.list_channels(session, workspace_id=workspace_id) == []
        kept = service.list_channels(session, workspace_id=workspace_id, include_archived=True)
        assert [(c.name, c.aliases) for c in kept] == [("服务号", "OA")]
        assert service.channel_aliases(session, workspace_id=workspace_id)["oa"] == "oa"
        with pytest.raises(NotFound):
            service.get_channel(session, workspace_id=workspace_id + 10**6, channel_id=channel.id)


def test_stores(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        store = service.create_store(
            session, workspace_id=workspace_id, code="SH-01", name="人民广场店", city="上海"
        )
    with db.transaction() as session, pytest.raises(Conflict):
        service.create_store(session, workspace_id=workspace_id, code="SH-01", name="dup")
    with db.transaction() as session, pytest.raises(ValidationFailed):
        service.create_store(session, workspace_id=workspace_id, code="X", name="x", latitude=91.0)
    with db.reader() as session:
        assert service.store_codes(session, workspace_id=workspace_id) == {
            "SH-01": store.id,
            "sh-01": store.id,
        }
        assert [s.city for s in service.list_stores(session, workspace_id=workspace_id)] == ["上海"]


def test_costs_refuse_overlap_and_negative_and_prorate(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        ads = service.create_channel(
            session, workspace_id=workspace_id, key="ads", name="Ads", source_type="ads"
        )
        service.add_cost(
            session,
            workspace_id=workspace_id,
            channel_id=ads.id,
            period_start=date(2025, 1, 1),
            period_end=date(2025, 1, 31),
            amount_cents=31_000_00,
        )
        service.add_cost(
            session,
            workspace_id=workspace_id,
            channel_id=ads.id,
            period_start=date(2025, 2, 1),
            period_end=date(2025, 2, 28),
            amount_cents=28_000_00,
        )
    with db.transaction() as session, pytest.raises(Conflict) as raised:
        service.add_cost(
            session,
            workspace_id=workspace_id,
            channel_id=ads.id,
            period_start=date(2025, 1, 31),
            period_end=date(2025, 2, 2),
            amount_cents=100,
        )
    assert "2025-01-01..2025-01-31" in raised.value.message
    with db.transaction() as session, pytest.raises(ValidationFailed) as negative:
        service.add_cost(
            session,
            workspace_id=workspace_id,
            channel_id=ads.id,
            period_start=date(2025, 3, 1),
            period_end=date(2025, 3, 31),
            amount_cents=-1,
        )
    assert negative.value.where == "amount_cents"
    with db.transaction() as session, pytest.raises(ValidationFailed):
        service.add_cost(
            session,
            workspace_id=workspace_id,
            channel_id=ads.id,
            period_start=date(2025, 3, 2),
            period_end=date(2025, 3, 1),
            amount_cents=1,
        )
    with db.reader() as session:
        assert len(service.list_costs(session, workspace_id=workspace_id, channel_id=ads.id)) == 2
        # all of January (31 000.00) + the first 14 of 28 days of February (14 000.00)
        totals = service.cost_by_channel(
            session, workspace_id=workspace_id, start=date(2025, 1, 1), end=date(2025, 2, 14)
        )
        assert [(t.channel_key, t.cost_cents) for t in totals] == [("ads", 45_000_00)]
        assert (
            service.cost_by_channel(
                session, workspace_id=workspace_id, start=date(2024, 1, 1), end=date(2024, 12, 31)
            )
            == []
        )
