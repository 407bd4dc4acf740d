"""Rollups kept current by loads and merges equal a full rebuild from raw orders, column by column."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

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
