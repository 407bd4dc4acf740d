"""Lifecycle stages: a plain recomputation of every customer's stage, the walk of one customer through
new → active → dormant → reactivated → loyal with its history and events, time passing without orders,
flows between stages, thresholds, and segments on lifecycle.stage; on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import ValidationFailed
from siyu.lifecycle import service as lifecycle
from siyu.lifecycle.models import CustomerStage
from siyu.segments import service as segments
from tests.factories import make_customer, make_member, make_order

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _stages(db: Database, workspace_id: int) -> dict[int, str]:
    with db.reader() as session:
        rows = session.execute(
            select(CustomerStage.customer_id, CustomerStage.stage).where(
                CustomerStage.workspace_id == workspace_id
            )
        )
        return {customer_id: stage for customer_id, stage in rows}


def _plain_stage(times: list[datetime], now: datetime, t: lifecycle.Thresholds) -> str:
    if not times:
        return "lead"
    times = sorted(times)
    if len(times) >= 2:
        gap = (times[-1] - times[0]).total_seconds() / 86400 / (len(times) - 1)
        after = max(t.dormant_factor * gap, 7)
    else:
        after = t.dormant_days
    after = min(after, t.churn_days)
    idle = (now - times[-1]).total_seconds() / 86400
    if idle >= t.churn_days:
        return "churned"
    if idle >= after:
        return "dormant"
    return "loyal" if len(times) >= t.loyal_orders else "active" if len(times) >= 2 else "new"


def test_a_first_sweep_equals_a_plain_recomputation(db: Database, workspace_id: int) -> None:
    rng = random.Random(17)
    purchases: dict[int, list[datetime]] = {}
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        for _ in range(60):
            customer = make_customer(session, workspace_id=workspace_id)
            times = [
                NOW - timedelta(days=rng.uniform(1, 400)) for _ in range(rng.choice([0, 1, 1, 2, 3, 5, 7]))
            ]
            for at in times:
                make_order(session, workspace_id=workspace_id, customer_id=customer.id, placed_at=at)
            purchases[customer.id] = times
        result = lifecycle.sweep(session, actor=actor, now=NOW)
    stages = _stages(db, workspace_id)
    expected = {c: _plain_stage(times, NOW, lifecycle.Thresholds()) for c, times in purchases.items()}
    mine = {c: stages[c] for c in purchases}
    assert mine == expected
    assert result.transitions == result.customers  # a first sweep places everyone
    assert sum(result.by_stage.values()) == result.customers


def test_one_customer_walks_through_the_stages_with_history_and_events(
    db: Database, workspace_id: int
) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        customer = make_customer(session, workspace_id=workspace_id)
        lifecycle.update_settings(
            session,
            actor=actor,
            thresholds=lifecycle.Thresholds(
                loyal_orders=4, dormant_factor=3, dormant_days=30, churn_days=120
            ),
        )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    steps = [
        (start - timedelta(days=1), None, "lead"),
        (start + timedelta(days=1), start, "new"),
        (start + timedelta(days=11), start + timedelta(days=10), "active"),  # gap 10 days: dormant after 30
        (start + timedelta(days=45), None, "dormant"),
        (start + timedelta(days=50), start + timedelta(days=49), "reactivated"),
        (start + timedelta(days=55), None, "reactivated"),  # until the next purchase
        (start + timedelta(days=61), start + timedelta(days=60), "loyal"),  # 4 purchases
        (start + timedelta(days=300), None, "churned"),  # time alone moves them
    ]
    for now, purchase_at, stage in steps:
        with db.transaction() as session:
            if purchase_at is not None:
                make_order(session, workspace_id=workspace_id, customer_id=customer.id, placed_at=purchase_at)
            lifecycle.sweep(session, actor=actor, now=now)
        assert _stages(db, workspace_id)[customer.id] == stage, (now, stage)
    with db.reader() as session:
        walk = lifecycle.history(session, workspace_id=workspace_id, customer_id=customer.id)
        events = session.scalars(
            select(DomainEvent)
            .where(DomainEvent.customer_id == customer.id, DomainEvent.type == "lifecycle.changed")
            .order_by(DomainEvent.id)
        ).all()
        flows = lifecycle.flows(session, actor=actor, start=start, end=start + timedelta(days=400))
    assert [(h.from_stage, h.to_stage) for h in walk] == [
        (None, "lead"),
        ("lead", "new"),
        ("new", "active"),
        ("active", "dormant"),
        ("dormant", "reactivated"),
        ("reactivated", "loyal"),
        ("loyal", "churned"),
    ]
    assert walk[3].at == start + timedelta(days=10 + 30) and walk[3].cause == "lapsed"  # when it passed
    assert walk[4].at == start + timedelta(days=49) and walk[4].cause == "bought_again"
    assert [e.payload["to"] for e in events] == [h.to_stage for h in walk]
    assert {(f.from_stage, f.to_stage): f.customers for f in flows}[("dormant", "reactivated")] == 1


def test_segments_read_the_stage_and_bad_thresholds_are_refused(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        lapsed = make_customer(session, workspace_id=workspace_id)
        make_order(
            session, workspace_id=workspace_id, customer_id=lapsed.id, placed_at=NOW - timedelta(days=90)
        )
        make_customer(session, workspace_id=workspace_id)  # a lead
        with pytest.raises(ValidationFailed, match="churn_days"):
            lifecycle.update_settings(
                session, actor=actor, thresholds=lifecycle.Thresholds(dormant_days=90, churn_days=60)
            )
    with db.reader() as session:
        assert (
            segments.count_segment_rule(session, actor=actor, rule="lifecycle.stage = null", now=NOW).count
            == 2
        )
    with db.transaction() as session:
        lifecycle.sweep(session, actor=actor, now=NOW)
    with db.reader() as session:

        def count(text: str) -> int:
            return segments.count_segment_rule(session, actor=actor, rule=text, now=NOW).count

        assert count('lifecycle.stage = "dormant"') == 1
        assert count('lifecycle = "lead"') == 1
        assert count('lifecycle.stage in ["new", "active", "loyal"]') == 0


def test_siyu_lifecycle_prints_the_stages(db: Database, workspace_id: int) -> None:
    import json

    from typer.testing import CliRunner

    from siyu.cli import app
    from siyu.workspaces.models import Workspace

    with db.transaction() as session:
        make_member(session, workspace_id=workspace_id, role=Role.OWNER)
        buyer = make_customer(session, workspace_id=workspace_id)
        make_order(
            session, workspace_id=workspace_id, customer_id=buyer.id, placed_at=NOW - timedelta(days=2)
        )
        slug = session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
    result = CliRunner().invoke(
        app, ["lifecycle", "--workspace", str(slug), "--now", "2026-06-01T00:00:00+00:00"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["stages"]["new"] == 1
