"""Dormant reactivation rate against an independent plain-Python recomputation on generated data: the
lifecycle sweep writes who was dormant when, the reach gateway and outbox send the messages (the
provider's answer at the transport seam), and the numbers agree exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.customers import service as customers
from siyu.lifecycle import service as lifecycle
from siyu.metrics import service as metrics
from siyu.reach import service as reach
from siyu.reach.adapters.base import SendResult
from tests.factories import make_customer, make_member, make_order, unique

START = datetime(2026, 4, 1, tzinfo=UTC)
END = datetime(2026, 6, 1, tzinfo=UTC)
DAY = 86400.0


def _noon(day: datetime) -> datetime:
    return day.replace(hour=4, minute=0, second=0, microsecond=0)  # 12:00 in Shanghai: no quiet hours


@pytest.mark.parametrize("seed", [1, 2])
def test_dormant_reactivation_equals_a_plain_recomputation(
    db: Database, workspace_id: int, seed: int
) -> None:
    rng = random.Random(seed)
    purchases: dict[int, list[datetime]] = {}
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.OWNER).actor
        for _ in range(30):
            customer = make_customer(
                session, workspace_id=workspace_id, created_at=datetime(2025, 12, 1, tzinfo=UTC)
            )
            customers.record_system_consent(
                session,
                workspace_id=workspace_id,
                customer_id=customer.id,
                contact_channel="sms",
                purpose="marketing",
                status="granted",
                source="test",
                occurred_at=datetime(2025, 12, 1, tzinfo=UTC),
            )
            times = sorted(
                datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 75 * 86400))
                for _ in range(rng.choice([1, 1, 2, 3]))
            )
            for at in times:
                make_order(session, workspace_id=workspace_id, customer_id=customer.id, placed_at=at)
            purchases[customer.id] = list(times)
        # who is dormant from when: the sweep of 1 May writes each customer's stage since then
        lifecycle.sweep(session, actor=actor, now=datetime(2026, 5, 1, tzinfo=UTC))
    reached: list[tuple[int, datetime]] = []
    with db.transaction() as session:
        for customer_id in purchases:
            for _ in range(rng.choice([0, 1, 2])):
                at = _noon(datetime(2026, 3, 20, tzinfo=UTC) + timedelta(days=rng.randrange(0, 80)))
                reach.send(
                    session,
                    workspace_id=workspace_id,
                    source="api",
                    source_ref=unique("wake"),
                    customer_ids=[customer_id],
                    content={"sms": {"text": "好久不见"}},
                    purpose="marketing",
                    channel_preference=["sms"],
                    now=at,
                )
                for claimed in reach.claim(session, limit=10, workspace_id=workspace_id, now=at):
                    status = reach.complete(
                        session,
                        message_id=claimed.message.message_id,
                        lease_token=claimed.lease_token,
                        result=SendResult.sent(unique("p")),
                        now=at,
                    )
                    if status == "sent":
                        reached.append((claimed.message.customer_id, at))
        # some buy again after the message, and a second sweep records their reactivation
        for customer_id, at in list(reached):
            if rng.random() < 0.5:
                bought = at + timedelta(seconds=rng.randrange(-3 * 86400, 45 * 86400))
                make_order(session, workspace_id=workspace_id, customer_id=customer_id, placed_at=bought)
                purchases[customer_id].append(bought)
        lifecycle.sweep(session, actor=actor, now=datetime(2026, 6, 10, tzinfo=UTC))
    with db.reader() as session:
        result = metrics.dormant_reactivation(session, actor=actor, start=START, end=END, days=30)
        history = {c: lifecycle.history(session, workspace_id=workspace_id, customer_id=c) for c in purchases}

    def stage_at(customer_id: int, at: datetime) -> str | None:
        stage = None
        for transition in history[customer_id]:  # oldest first
            when = transition.at if transition.at.tzinfo else transition.at.replace(tzinfo=UTC)
            if when <= at:
                stage = transition.to_stage
        return stage

    first_reach: dict[int, datetime] = {}
    for customer_id, at in reached:
        if START <= at < END and stage_at(customer_id, at) == "dormant":
            first_reach[customer_id] = min(at, first_reach.get(customer_id, at))
    gaps = []
    for customer_id, at in first_reach.items():
        later = [p for p in purchases[customer_id] if p >= at]
        if later and (min(later) - at).total_seconds() / DAY < 30:
            gaps.append((min(later) - at).total_seconds() / DAY)
    assert (result.reached_dormant, result.reactivated) == (len(first_reach), len(gaps))
    assert 0 < result.reactivated < result.reached_dormant  # the data has both kinds
    assert result.rate == pytest.approx(len(gaps) / len(first_reach))
    assert result.mean_days_to_purchase == pytest.approx(sum(gaps) / len(gaps), rel=1e-6)


def test_a_reactivation_window_out_of_range_is_refused(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        actor = make_member(session, workspace_id=workspace_id, role=Role.ANALYST).actor
    with db.reader() as session, pytest.raises(ValidationFailed, match="out of range"):
        metrics.dormant_reactivation(session, actor=actor, start=START, end=END, days=0)
