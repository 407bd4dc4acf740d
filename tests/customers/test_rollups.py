"""Rollups kept current by loads and merges equal a full rebuild from raw orders, column by column."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from siyu.core.db import Database
from siyu.customers import identity, rollups
from siyu.customers.models import CustomerRollup
from siyu.ingest.schemas import ImportKind
from tests.ingest.test_loader import T0, add_channel, batch, load, order

COLUMNS = [c.name for c in CustomerRollup.__table__.columns if c.name != "updated_at"]


def snapshot(db: Database, workspace_id: int) -> dict[int, tuple[Any, ...]]:
    with db.reader() as session:
        rows = session.scalars(select(CustomerRollup).where(CustomerRollup.workspace_id == workspace_id))
        return {r.customer_id: tuple(getattr(r, c) for c in COLUMNS) for r in rows}


def test_incremental_rollups_equal_full_rebuild(db: Database, workspace_id: int) -> None:
    rng = random.Random(7)
    channels = [add_channel(db, workspace_id, key) for key in ("douyin", "store", "meituan")]
    keys = ["douyin", "store", "meituan", None]
    phones = [f"+86139666{n:05d}" for n in range(11000, 11012)]
    statuses = ["paid", "paid", "paid", "pending", "cancelled"]
    ext = 0
    for _round in range(5):
        rows = []
        for _ in range(15):
            ext += 1
            rows.append(
                order(
                    f"R{ext}",
                    phone=rng.choice(phones),
                    paid=rng.randint(100, 5000),
                    status=rng.choice(statuses),
                    channel=rng.choice(keys),
                    category=rng.choice(["tea", "cake", "", None]),
                    placed_at=T0 + timedelta(hours=rng.randint(0, 2000)),
                )
            )
        # refunds and status changes of earlier orders
        for _ in range(4):
            old = rng.randint(1, ext - 1)
            paid = 1000
            refunded = rng.choice([0, 300, 1000])
            status = {0: "paid", 300: "partially_refunded", 1000: "refunded"}[refunded]
            rows.append(order(f"R{old}", phone=None, paid=paid, refunded_cents=refunded, status=status))
        load(db, workspace_id, batch(ImportKind.ORDERS, rows))
        events = [
            {
                "type": "visit",
                "occurred_at": T0 + timedelta(hours=rng.randint(0, 3000)),
                "phone": rng.choice(phones),
            }
            for _ in range(5)
        ]
        load(db, workspace_id, batch(ImportKind.EVENTS, events))
        # link two phones through a shared unionid: a merge
        a, b = rng.sample(phones, 2)
        load(
            db,
            workspace_id,
            batch(
                ImportKind.ORDERS,
                [
                    order(f"L{_round}a", phone=a, wechat_unionid=f"ox-{_round}1"),
                    order(f"L{_round}b", phone=b, wechat_unionid=f"ox-{_round}1"),
                ],
            ),
        )
    with db.transaction() as session:
        logs = identity.list_merges(session, workspace_id=workspace_id)
        assert logs, "the mix should have merged customers"
        identity.unmerge(session, workspace_id=workspace_id, merge_log_id=logs[-1].id, actor_user_id=None)

    incremental = snapshot(db, workspace_id)
    assert any(row[COLUMNS.index("categories")] for row in incremental.values())
    assert any(row[COLUMNS.index("first_channel_id")] in channels for row in incremental.values())
    with db.transaction() as session:
        count = rollups.rebuild_rollups(session, workspace_id=workspace_id)
    rebuilt = snapshot(db, workspace_id)
    assert count == len(rebuilt) == len(incremental)
    assert rebuilt == incremental


def test_first_load_rollups_from_memory_equal_full_rebuild(
    db: Database, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first load of orders computes rollups from its own frames: they must equal the SQL rebuild,
    across chunks, merges between chunks, refunds, ties, channels, categories and earlier events."""
    rng = random.Random(11)
    channels = [add_channel(db, workspace_id, key) for key in ("douyin", "store")]
    phones = [f"+86139777{n:05d}" for n in range(20000, 20015)]
    # people known before the first order: events (last_event_at) and a customer with a first channel
    load(
        db,
        workspace_id,
        batch(
            ImportKind.EVENTS,
            [{"type": "visit", "occurred_at": T0 + timedelta(hours=h), "phone": phones[h]} for h in range(4)],
        ),
    )
    load(
        db,
        workspace_id,
        batch(ImportKind.CUSTOMERS, [{"phone": phones[5], "channel": "store", "name": "Lin"}]),
    )
    statuses = ["paid", "paid", "pending", "cancelled", "refunded", "partially_refunded"]
    rows = []
    for n in range(120):
        status = rng.choice(statuses)
        rows.append(
            order(
                f"F{n}",
                phone=rng.choice([*phones, None]),
                paid=rng.randint(100, 5000),
                refunded_cents={"refunded": 5000, "partially_refunded": 50}.get(status, 0),
                status=status,
                channel=rng.choice(["douyin", "store", None]),
                category=rng.choice(["茶饮", "cake", "", None, "Tea"]),
                sku=f"S{n % 3}",
                quantity=1,
                unit_price_cents=100,
                # few distinct times: ties on placed_at, decided by order id
                placed_at=T0 + timedelta(hours=rng.randint(0, 5)),
            )
        )
    # a second line for some orders, and rows in later chunks linking two phones (merges)
    rows += [order("F1", phone=None, category="lines", sku="X", quantity=2, unit_price_cents=50)]
    rows += [order(f"M{i}", phone=phones[i], wechat_unionid=f"ox-M{i // 2}") for i in range(6)]
    rows += [order("Z1", phone="+8613977799999", status="cancelled")]  # a customer without purchases
    calls: list[int] = []
    from_frames = rollups.refresh_rollups_from_frames

    def spy(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return from_frames(*args, **kwargs)

    monkeypatch.setattr(rollups, "refresh_rollups_from_frames", spy)
    result, _ = load(db, workspace_id, batch(ImportKind.ORDERS, rows), chunk_rows=25)
    assert calls == [1], "a first load of orders computes rollups from memory"
    assert result.customers_merged >= 2

    loaded = snapshot(db, workspace_id)
    assert any(row[COLUMNS.index("categories")] for row in loaded.values())
    assert any(row[COLUMNS.index("first_channel_id")] in channels for row in loaded.values())
    assert any(row[COLUMNS.index("last_event_at")] is not None for row in loaded.values())
    assert any(row[COLUMNS.index("order_count")] == 0 for row in loaded.values())
    with db.transaction() as session:
        rollups.rebuild_rollups(session, workspace_id=workspace_id)
    assert snapshot(db, workspace_id) == loaded

    # the next load meets stored orders: the SQL refresh runs, and agrees as well
    calls.clear()
    load(db, workspace_id, batch(ImportKind.ORDERS, [order("F2", phone=phones[0], paid=1, status="paid")]))
    assert calls == []
    refreshed = snapshot(db, workspace_id)
    with db.transaction() as session:
        rollups.rebuild_rollups(session, workspace_id=workspace_id)
    assert snapshot(db, workspace_id) == refreshed
