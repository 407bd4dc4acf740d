"""Scoring a workspace: every buyer gets the scores the fitted models give their history (recomputed
here from the generated orders), a rerun replaces them, and segments select on them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from sqlalchemy import select

from siyu.auth.models import Role
from siyu.clv import service as clv
from siyu.clv.fitters.bgnbd import BetaGeoFitter
from siyu.clv.models import CustomerScore
from siyu.clv.summary import summarise
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.segments import service as segments
from tests.factories import make_customer, make_member, make_order

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def _pool(
    db: Database, workspace_id: int, seed: int = 5
) -> tuple[object, dict[int, list[tuple[datetime, int]]], int]:
    rng = random.Random(seed)
    bought: dict[int, list[tuple[datetime, int]]] = {}
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        for i in range(70):
            customer = make_customer(session, workspace_id=workspace_id)
            if i % 9 == 0:
                continue  # never bought: never scored
            rate = rng.choice([0.01, 0.03, 0.06, 0.12])
            at = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(days=rng.uniform(0, 200))
            alive_until = at + timedelta(days=rng.expovariate(1 / 150))
            orders = []
            while at < AS_OF and at < alive_until:
                cents = rng.randrange(1500, 9000)
                make_order(
                    session,
                    workspace_id=workspace_id,
                    customer_id=customer.id,
                    paid_cents=cents,
                    placed_at=at,
                )
                orders.append((at, cents))
                at += timedelta(days=rng.expovariate(rate))
            bought[customer.id] = orders
        later = make_customer(session, workspace_id=workspace_id)
        make_order(
            session, workspace_id=workspace_id, customer_id=later.id, placed_at=AS_OF + timedelta(days=2)
        )
    return actor, bought, later.id


def test_scores_are_what_the_models_say_of_each_history(db: Database, workspace_id: int) -> None:
    actor, bought, later = _pool(db, workspace_id)
    with db.transaction() as session:
        run = clv.score_workspace(session, actor=actor, as_of=AS_OF)  # type: ignore[arg-type]
    with db.reader() as session:
        scores = {
            s.customer_id: s
            for s in session.scalars(select(CustomerScore).where(CustomerScore.workspace_id == workspace_id))
        }
    assert set(scores) == set(bought) and later not in scores and run.scored == len(bought)
    # the same log summarised and fitted here, by the workspace's calendar (Asia/Shanghai)
    zone = ZoneInfo("Asia/Shanghai")
    rows = [
        (c, at.astimezone(zone).date(), cents / 100) for c, orders in bought.items() for at, cents in orders
    ]
    log = pl.DataFrame(
        {"customer_id": [r[0] for r in rows], "date": [r[1] for r in rows], "amount": [r[2] for r in rows]}
    )
    histories = summarise(
        log, calibration_end=(AS_OF - timedelta(microseconds=1)).astimezone(zone).date(), unit="week"
    )
    model = BetaGeoFitter().fit(histories.frequency, histories.recency, histories.T)
    assert run.params == pytest.approx(model.params_, rel=1e-9)
    alive = model.probability_alive(histories.frequency, histories.recency, histories.T)
    expected = model.expected_purchases(90 / 7, histories.frequency, histories.recency, histories.T)
    for customer, p, e in zip(histories.customer_ids, alive, expected, strict=True):
        assert scores[int(customer)].p_alive == pytest.approx(p, rel=1e-9)
        assert scores[int(customer)].expected_purchases_90d == pytest.approx(e, rel=1e-9)
    values = np.array([scores[c].clv_cents for c in scores])
    ranks = np.array([scores[c].clv_percentile for c in scores])
    assert np.all((ranks > 0) & (ranks <= 100))
    assert np.all(np.diff(ranks[np.argsort(values, kind="stable")]) > 0)  # ranks follow the value
    assert all(0 <= s.p_alive <= 1 and s.clv_cents >= 0 for s in scores.values())
    # a rerun replaces the scores, it does not add to them
    with db.transaction() as session:
        again = clv.score_workspace(session, actor=actor, as_of=AS_OF)  # type: ignore[arg-type]
        count = len(
            session.scalars(
                select(CustomerScore.customer_id).where(CustomerScore.workspace_id == workspace_id)
            ).all()
        )
    assert again.scored == count == len(bought)


def test_segments_select_on_the_scores(db: Database, workspace_id: int) -> None:
    actor, _, _ = _pool(db, workspace_id, seed=8)
    with db.transaction() as session:
        clv.score_workspace(session, actor=actor, as_of=AS_OF)  # type: ignore[arg-type]
    with db.reader() as session:
        scores = list(
            session.scalars(select(CustomerScore).where(CustomerScore.workspace_id == workspace_id))
        )

        def count(text: str) -> int:
            return segments.count_segment_rule(session, actor=actor, rule=text, now=AS_OF).count  # type: ignore[arg-type]

        assert count("clv.p_alive < 0.3") == sum(1 for s in scores if s.p_alive < 0.3)
        assert count("clv.percentile >= 90") == sum(1 for s in scores if s.clv_percentile >= 90)
        assert count("clv.value >= 50") == sum(1 for s in scores if s.clv_cents >= 5000)
        assert count("clv.expected_purchases > 1") == sum(1 for s in scores if s.expected_purchases_90d > 1)
        # a customer never scored fails every comparison, so `not` (the complement) includes them;
        # "= null" finds them
        everyone = count("has(phone)")
        unscored = count("clv.p_alive = null")
        assert unscored == everyone - len(scores) > 0
        assert count("not clv.p_alive < 0.3") == everyone - count("clv.p_alive < 0.3")
        assert count("clv.p_alive >= 0.3") == sum(1 for s in scores if s.p_alive >= 0.3)


def test_too_little_data_is_refused(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        with pytest.raises(ValidationFailed, match="no purchases"):
            clv.score_workspace(session, actor=actor, as_of=AS_OF)
        customer = make_customer(session, workspace_id=workspace_id)
        make_order(
            session, workspace_id=workspace_id, customer_id=customer.id, placed_at=AS_OF - timedelta(days=3)
        )
        with pytest.raises(ValidationFailed, match="too few"):
            clv.score_workspace(session, actor=actor, as_of=AS_OF)
        with pytest.raises(ValidationFailed, match="unknown purchase model"):
            clv.score_workspace(session, actor=actor, as_of=AS_OF, model="linear")  # type: ignore[arg-type]


def test_siyu_clv_score_from_the_command_line(db: Database, workspace_id: int) -> None:
    import json

    from typer.testing import CliRunner

    from siyu.cli import app
    from siyu.workspaces.models import Workspace

    _pool(db, workspace_id, seed=3)
    with db.reader() as session:
        slug = session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
    result = CliRunner().invoke(app, ["clv", "score", "--workspace", str(slug), "--as-of", "2026-05-31"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["model"] == "bgnbd" and summary["as_of"] == "2026-05-31" and summary["scored"] > 0
    bad = CliRunner().invoke(app, ["clv", "score", "--workspace", str(slug), "--as-of", "31/05/2026"])
    assert bad.exit_code != 0


def _zone_days(orders: list[tuple[datetime, int]]) -> list[object]:
    zone = ZoneInfo("Asia/Shanghai")
    return sorted({at.astimezone(zone).date() for at, _ in orders})


def test_the_calibration_check_compares_holdout_purchases_per_frequency(
    db: Database, workspace_id: int
) -> None:
    actor, bought, _ = _pool(db, workspace_id, seed=11)
    now = datetime(2026, 7, 1, 4, tzinfo=UTC)
    with db.reader() as session:
        check = clv.calibration_check(session, actor=actor, holdout_days=120, as_of=now)  # type: ignore[arg-type]
    end = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    calibration_end = end - timedelta(days=120)
    assert (check.holdout_end, check.calibration_end) == (end, calibration_end)
    # recomputed in plain Python: purchase days in and after the calibration period, per buyer
    by_bucket: dict[str, list[int]] = {}
    for orders in bought.values():
        days = _zone_days(orders)
        inside = [d for d in days if d <= calibration_end]  # type: ignore[operator]
        if not inside:
            continue
        repeats = len(inside) - 1
        key = "7+" if repeats >= 7 else str(repeats)
        by_bucket.setdefault(key, []).append(sum(1 for d in days if calibration_end < d <= end))  # type: ignore[operator]
    assert check.buyers == sum(len(v) for v in by_bucket.values())
    assert [b.frequency for b in check.buckets] == sorted(by_bucket, key=lambda k: int(k.rstrip("+")))
    for bucket in check.buckets:
        actual = by_bucket[bucket.frequency]
        assert bucket.customers == len(actual)
        assert bucket.actual == pytest.approx(sum(actual) / len(actual), rel=1e-12)
        assert bucket.predicted >= 0
    # the model's prediction grows with the calibration frequency's evidence of activity
    assert check.buckets[-1].predicted > check.buckets[0].predicted


def test_the_calibration_of_a_brand_whose_orders_stopped_ends_at_its_newest_order(
    db: Database, workspace_id: int
) -> None:
    """An imported past brand (its orders stop months before today): the default holdout ends just after
    the newest order, so it holds purchases, and two checks of the same data agree exactly."""
    actor, _, _ = _pool(db, workspace_id, seed=14)
    newest = AS_OF + timedelta(days=2)  # the pool's last order, by the customer who came later
    with db.reader() as session:
        first = clv.calibration_check(session, actor=actor, holdout_days=90)  # type: ignore[arg-type]
        again = clv.calibration_check(session, actor=actor, holdout_days=90)  # type: ignore[arg-type]
    assert first.holdout_end == newest.astimezone(ZoneInfo("Asia/Shanghai")).date()
    assert sum(b.actual * b.customers for b in first.buckets) > 0  # the holdout holds purchases
    assert first == again


def test_the_calibration_check_refuses_what_it_cannot_fit(db: Database, workspace_id: int) -> None:
    actor, _, _ = _pool(db, workspace_id, seed=12)
    with db.reader() as session:
        with pytest.raises(ValidationFailed, match="out of range"):
            clv.calibration_check(session, actor=actor, holdout_days=3)  # type: ignore[arg-type]
        with pytest.raises(ValidationFailed, match="no purchase on or before"):
            clv.calibration_check(  # type: ignore[arg-type]
                session, actor=actor, holdout_days=700, as_of=datetime(2026, 6, 1, tzinfo=UTC)
            )


def test_the_page_figures_come_from_the_stored_scores(db: Database, workspace_id: int) -> None:
    actor, bought, _ = _pool(db, workspace_id, seed=13)
    with db.transaction() as session:
        clv.score_workspace(session, actor=actor, as_of=AS_OF)  # type: ignore[arg-type]
    with db.reader() as session:
        scores = list(
            session.scalars(select(CustomerScore).where(CustomerScore.workspace_id == workspace_id))
        )
        summary = clv.score_summary(session, actor=actor)  # type: ignore[arg-type]
        values = clv.value_distribution(session, actor=actor)  # type: ignore[arg-type]
        alive = clv.p_alive_distribution(session, actor=actor)  # type: ignore[arg-type]
        top = clv.top_customers(session, actor=actor, limit=5)  # type: ignore[arg-type]
    assert summary.scored == len(scores) == len(bought) and summary.model == "bgnbd"
    assert summary.total_clv_cents == sum(s.clv_cents for s in scores)
    assert summary.at_risk == sum(1 for s in scores if s.p_alive < clv.AT_RISK_P_ALIVE)
    assert summary.mean_p_alive == pytest.approx(sum(s.p_alive for s in scores) / len(scores))
    edges = [*clv.VALUE_EDGES_CENTS[1:], float("inf")]
    expected_bands = [0] * len(edges)
    for s in scores:
        expected_bands[next(i for i, edge in enumerate(edges) if s.clv_cents < edge)] += 1
    assert [b.customers for b in values] == expected_bands
    assert sum(b.clv_cents for b in values) == summary.total_clv_cents
    expected_alive = [0] * 10
    for s in scores:
        expected_alive[min(int(s.p_alive * 10), 9) if s.p_alive < 1 else 9] += 1
    assert [b.customers for b in alive] == expected_alive
    best = sorted(scores, key=lambda s: (-s.clv_cents, s.customer_id))[:5]
    assert [c.customer_id for c in top] == [s.customer_id for s in best]
