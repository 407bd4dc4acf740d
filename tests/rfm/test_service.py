"""RFM against a plain recomputation: quintile and threshold scores, the eight layers, recency ageing
with time, a rerun replacing the scores, and segments on rfm.* fields; on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.rfm import service as rfm
from siyu.rfm.models import CustomerRfm
from siyu.segments import service as segments
from tests.factories import make_customer, make_member, make_order

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _pool(db: Database, workspace_id: int, seed: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    orders: dict[int, list[tuple[datetime, int, str]]] = {}
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        for _ in range(60):
            customer = make_customer(session, workspace_id=workspace_id)
            mine = []
            for _ in range(rng.choice([0, 1, 1, 2, 3, 4, 6])):
                at = NOW - timedelta(days=rng.uniform(0.5, 500), seconds=rng.randrange(86400))
                status = rng.choices(["paid", "partially_refunded", "refunded"], [90, 5, 5])[0]
                cents = rng.choice([1800, 3200, 3200, 5600, 12800])
                refunded = {"paid": 0, "partially_refunded": cents // 4, "refunded": cents}[status]
                make_order(
                    session,
                    workspace_id=workspace_id,
                    customer_id=customer.id,
                    paid_cents=cents,
                    refunded_cents=refunded,
                    status=status,
                    placed_at=at,
                )
                mine.append((at, cents - refunded, status))
            orders[customer.id] = mine
    return actor, orders


def _quintile(values: dict[int, float], reverse: bool = False) -> dict[int, int]:
    """ceil(5 · cume_dist) with ties sharing a score; `reverse`: smaller is better (recency)."""
    n = len(values)
    result = {}
    for customer, value in values.items():
        at_most = sum(1 for v in values.values() if (v >= value if reverse else v <= value))
        result[customer] = math.ceil(5 * at_most / n - 1e-9)
    return result


def _expected(
    orders: dict[int, list[tuple[datetime, int, str]]], window_days: int = 365
) -> dict[int, tuple[float, int, int]]:
    start = NOW - timedelta(days=window_days)
    out = {}
    for customer, mine in orders.items():
        inside = [(at, net) for at, net, status in mine if status != "refunded" and start <= at < NOW]
        if inside:
            last = max(at for at, _ in inside)
            out[customer] = ((NOW - last).total_seconds() / 86400, len(inside), sum(net for _, net in inside))
    return out


def _layers(r: dict[int, int], f: dict[int, int], m: dict[int, int]) -> dict[int, str]:
    n = len(r)
    mr, mf, mm = sum(r.values()) / n, sum(f.values()) / n, sum(m.values()) / n
    return {c: rfm.LAYERS[(r[c] > mr, f[c] > mf, m[c] > mm)] for c in r}


@pytest.mark.parametrize("seed", [1, 2])
def test_quintile_scores_and_layers_equal_a_plain_recomputation(
    db: Database, workspace_id: int, seed: int
) -> None:
    actor, orders = _pool(db, workspace_id, seed)
    with db.transaction() as session:
        run = rfm.compute_rfm(session, actor=actor, now=NOW, window_days=365)
    raw = _expected(orders)
    r = _quintile({c: v[0] for c, v in raw.items()}, reverse=True)
    f = _quintile({c: v[1] for c, v in raw.items()})
    m = _quintile({c: v[2] for c, v in raw.items()})
    layers = _layers(r, f, m)
    with db.reader() as session:
        stored = {
            row.customer_id: row
            for row in session.scalars(select(CustomerRfm).where(CustomerRfm.workspace_id == workspace_id))
        }
    assert set(stored) == set(raw) and run.scored == len(raw)
    for customer, row in stored.items():
        assert row.recency_days == pytest.approx(raw[customer][0], abs=1e-6)
        assert (row.frequency, row.monetary_cents) == raw[customer][1:]
        assert (row.r, row.f, row.m) == (r[customer], f[customer], m[customer]), customer
        assert row.layer == layers[customer]
    assert {lc.layer: lc.customers for lc in run.layers} == {
        name: sum(1 for v in layers.values() if v == name) for name in rfm.LAYER_NAMES
    }
    assert sum(lc.monetary_cents for lc in run.layers) == sum(v[2] for v in raw.values())


def test_threshold_scores_follow_the_brands_cut_points(db: Database, workspace_id: int) -> None:
    actor, orders = _pool(db, workspace_id, 3)
    cuts = rfm.Thresholds(
        recency_days=(15, 30, 60, 90), frequency=(1, 2, 3, 5), monetary_yuan=(30, 60, 100, 200)
    )
    with db.transaction() as session:
        rfm.compute_rfm(session, actor=actor, now=NOW, method="threshold", thresholds=cuts)
    raw = _expected(orders)

    def score(value: float, points: tuple[float, ...], reverse: bool) -> int:
        for i, point in enumerate(points):
            if value <= point:
                return 5 - i if reverse else i + 1
        return 1 if reverse else 5

    with db.reader() as session:
        for row in session.scalars(select(CustomerRfm).where(CustomerRfm.workspace_id == workspace_id)):
            recency, frequency, cents = raw[row.customer_id]
            assert row.r == score(recency, cuts.recency_days, True)
            assert row.f == score(frequency, cuts.frequency, False)
            assert row.m == score(cents, tuple(y * 100 for y in cuts.monetary_yuan), False)


def test_recency_ages_without_new_orders_and_segments_read_the_scores(
    db: Database, workspace_id: int
) -> None:
    actor, _ = _pool(db, workspace_id, 4)
    with db.transaction() as session:
        rfm.compute_rfm(session, actor=actor, now=NOW, method="threshold")
    with db.reader() as session:
        rows = list(session.scalars(select(CustomerRfm).where(CustomerRfm.workspace_id == workspace_id)))
        before = {row.customer_id: row.r for row in rows}

        def count(text: str) -> int:
            return segments.count_segment_rule(session, actor=actor, rule=text, now=NOW).count

        assert count('rfm.layer = "重要挽留"') == sum(1 for row in rows if row.layer == "重要挽留")
        assert count('rfm.layer in ["重要价值", "一般价值"]') == sum(
            1 for row in rows if row.layer in ("重要价值", "一般价值")
        )
        assert count("rfm.r = 5") == sum(1 for row in rows if row.r == 5)
        assert count("rfm.r >= 4 and rfm.f >= 2") == sum(1 for row in rows if row.r >= 4 and row.f >= 2)
        assert count("rfm.layer = null") == count("has(phone)") - len(rows)
    with db.transaction() as session:
        rfm.compute_rfm(session, actor=actor, now=NOW + timedelta(days=120), method="threshold")
    with db.reader() as session:
        after = {
            row.customer_id: row.r
            for row in session.scalars(select(CustomerRfm).where(CustomerRfm.workspace_id == workspace_id))
        }
    assert set(after) <= set(before) and all(after[c] <= before[c] for c in after)
    assert any(after[c] < before[c] for c in after) or not after
    assert len(after) < len(before)  # buyers whose purchases all left the 365-day window are no longer scored


def test_bad_settings_are_refused(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        with pytest.raises(ValidationFailed, match="four rising numbers"):
            rfm.compute_rfm(
                session,
                actor=actor,
                now=NOW,
                method="threshold",
                thresholds=rfm.Thresholds(frequency=(1, 1, 2, 3)),
            )
        with pytest.raises(ValidationFailed, match="out of range"):
            rfm.compute_rfm(session, actor=actor, now=NOW, window_days=1)
        with pytest.raises(ValidationFailed, match="unknown scoring method"):
            rfm.compute_rfm(session, actor=actor, now=NOW, method="kmeans")  # type: ignore[arg-type]


def test_siyu_rfm_prints_the_layers(db: Database, workspace_id: int) -> None:
    import json

    from typer.testing import CliRunner

    from siyu.cli import app
    from siyu.workspaces.models import Workspace

    _pool(db, workspace_id, 6)
    with db.reader() as session:
        slug = session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
    result = CliRunner().invoke(app, ["rfm", "--workspace", str(slug), "--now", "2026-06-01T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (
        list(summary["layers"]) == list(rfm.LAYER_NAMES)
        and sum(summary["layers"].values()) == summary["scored"] > 0
    )
    assert CliRunner().invoke(app, ["rfm", "--workspace", str(slug), "--now", "yesterday"]).exit_code != 0
