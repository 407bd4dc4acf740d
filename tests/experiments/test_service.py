"""Experiments end to end: create, start, assign (stable, recorded once), analyse against a plain
recomputation of the arms and the statistics functions; refusals that write nothing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.experiments import service as experiments
from siyu.experiments.models import Exposure
from siyu.experiments.statistics import assign_variant, two_proportion_test, welch_test
from tests.factories import make_customer, make_event, make_member, make_order, unique


def test_assignment_is_recorded_once_and_stable(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OPERATOR).actor
        customer = make_customer(session, workspace_id=workspace_id)
        experiment = experiments.create_experiment(
            session,
            actor=actor,
            key=unique("welcome"),
            name="Welcome coupon",
            variants={"control": 1, "coupon": 1},
        )
        with pytest.raises(Conflict, match="not running"):
            experiments.assign(
                session, workspace_id=workspace_id, experiment_id=experiment.id, customer_id=customer.id
            )
        experiments.start_experiment(session, actor=actor, experiment_id=experiment.id)
        key = experiment.key
        experiment_id = experiment.id
    with db.transaction() as session:
        first = experiments.assign_for(
            session, actor=actor, experiment_id=experiment_id, customer_id=customer.id
        )
    with db.transaction() as session:
        again = experiments.assign_for(
            session, actor=actor, experiment_id=experiment_id, customer_id=customer.id
        )
        exposures = session.query(Exposure).filter_by(experiment_id=experiment_id).all()
    assert first == again == assign_variant(key, customer.id, {"control": 1, "coupon": 1})
    assert len(exposures) == 1


def test_results_equal_a_plain_recomputation(db: Database, workspace_id: int) -> None:
    rng = random.Random(21)
    exposed_at = datetime(2026, 3, 1, tzinfo=UTC)
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        experiment = experiments.create_experiment(
            session,
            actor=actor,
            key=unique("spring"),
            name="Spring",
            variants={"control": 1, "a": 1, "b": 2},
            holdout_share=0.1,
            goal_window_days=14,
        )
        experiments.start_experiment(session, actor=actor, experiment_id=experiment.id)
        arms: dict[str | None, list[tuple[bool, int]]] = {}
        for _ in range(160):
            customer = make_customer(session, workspace_id=workspace_id)
            variant = experiments.assign(
                session,
                workspace_id=workspace_id,
                experiment_id=experiment.id,
                customer_id=customer.id,
                at=exposed_at,
            )
            net_in_window, converted = 0, False
            lift = {"control": 0.2, "a": 0.3, "b": 0.45, None: 0.1}[variant]
            for _ in range(rng.choice([0, 1, 2])):
                if rng.random() < lift * 2:
                    at = exposed_at + timedelta(days=rng.uniform(-5, 25))
                    cents = rng.randrange(1000, 9000)
                    make_order(
                        session,
                        workspace_id=workspace_id,
                        customer_id=customer.id,
                        paid_cents=cents,
                        placed_at=at,
                    )
                    if exposed_at <= at < exposed_at + timedelta(days=14):
                        net_in_window += cents
                        converted = True
            arms.setdefault(variant, []).append((converted, net_in_window))
        experiment_id = experiment.id
    with db.reader() as session:
        results = experiments.analyse(session, actor=actor, experiment_id=experiment_id)
    assert [a.name for a in results.arms] == ["control", "a", "b", "holdout"]
    assert [a.planned_share for a in results.arms] == pytest.approx([0.225, 0.225, 0.45, 0.1])
    for arm in results.arms:
        rows = arms.get(None if arm.name == "holdout" else arm.name, [])
        assert arm.exposed == len(rows)
        assert arm.converted == sum(1 for c, _ in rows if c)
        values = [v for _, v in rows]
        mean = sum(values) / len(values)
        assert arm.revenue_per_customer_cents == pytest.approx(mean)
        assert arm.revenue_variance == pytest.approx(
            sum((v - mean) ** 2 for v in values) / (len(values) - 1), rel=1e-9
        )
    control = results.arms[0]
    by_arm = {c.arm: c for c in results.comparisons}
    assert set(by_arm) == {"a", "b", "holdout"}
    for arm in results.arms[1:]:
        comparison = by_arm[arm.name]
        expected = two_proportion_test(control.converted, control.exposed, arm.converted, arm.exposed)
        assert comparison.conversion.p_value == pytest.approx(expected.p_value)
        assert comparison.conversion_p_adjusted >= comparison.conversion.p_value
        revenue = welch_test(
            control.revenue_per_customer_cents or 0,
            control.revenue_variance or 0,
            control.exposed,
            arm.revenue_per_customer_cents or 0,
            arm.revenue_variance or 0,
            arm.exposed,
        )
        assert comparison.revenue is not None and comparison.revenue.p_value == pytest.approx(revenue.p_value)
        assert 0 <= comparison.chance_to_beat <= 1
    assert results.sample_ratio_p_value is not None and not results.sample_ratio_mismatch


def test_a_goal_event_counts_only_inside_the_window(db: Database, workspace_id: int) -> None:
    exposed_at = datetime(2026, 3, 1, tzinfo=UTC)
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        experiment = experiments.create_experiment(
            session,
            actor=actor,
            key=unique("open"),
            name="Open",
            variants={"x": 1, "y": 1},
            goal_event="message.opened",
            goal_window_days=3,
        )
        experiments.start_experiment(session, actor=actor, experiment_id=experiment.id)
        inside, before, late = (make_customer(session, workspace_id=workspace_id) for _ in range(3))
        for customer, offset in ((inside, 1), (before, -1), (late, 4)):
            experiments.assign(
                session,
                workspace_id=workspace_id,
                experiment_id=experiment.id,
                customer_id=customer.id,
                at=exposed_at,
            )
            make_event(
                session,
                workspace_id=workspace_id,
                customer_id=customer.id,
                type="message.opened",
                occurred_at=exposed_at + timedelta(days=offset),
            )
        experiment_id = experiment.id
    with db.reader() as session:
        results = experiments.analyse(session, actor=actor, experiment_id=experiment_id)
    assert results.goal == "event:message.opened"
    assert sum(a.converted for a in results.arms) == 1 and sum(a.exposed for a in results.arms) == 3


def test_bad_experiments_are_refused_and_write_nothing(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OPERATOR).actor
        analyst = make_member(session, workspace_id=workspace_id, role=Role.ANALYST).actor
        key = unique("dup")
        experiments.create_experiment(session, actor=actor, key=key, name="A", variants={"a": 1, "b": 1})
    with db.transaction() as session:
        with pytest.raises(ValidationFailed, match="at least two"):
            experiments.create_experiment(
                session, actor=actor, key=unique("k"), name="x", variants={"only": 1}
            )
        with pytest.raises(ValidationFailed, match="short code"):
            experiments.create_experiment(
                session, actor=actor, key="Has Spaces", name="x", variants={"a": 1, "b": 1}
            )
        with pytest.raises(ValidationFailed, match="holdout"):
            experiments.create_experiment(
                session, actor=actor, key=unique("k"), name="x", variants={"a": 1, "b": 1}, holdout_share=1
            )
        with pytest.raises(Conflict, match="exists already"):
            experiments.create_experiment(
                session, actor=actor, key=key, name="again", variants={"a": 1, "b": 1}
            )
        with pytest.raises(NotFound):
            experiments.start_experiment(session, actor=actor, experiment_id=10**9)
    from siyu.core.errors import PermissionDenied

    with db.transaction() as session, pytest.raises(PermissionDenied):
        experiments.create_experiment(
            session, actor=analyst, key=unique("k"), name="x", variants={"a": 1, "b": 1}
        )
