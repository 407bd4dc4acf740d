"""Caps hold whatever the sources do: a property test (no sequence of sends from different sources,
channels and purposes breaks the budget, a channel cap or the WeCom platform cap), and on PostgreSQL
concurrent sources deciding for one customer at the same moment."""

from __future__ import annotations

import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.core.db import Database
from siyu.reach import service
from siyu.reach.models import COUNTED_STATUSES, ReachMessage
from siyu.reach.service.policy import calendar_period
from tests.factories import member
from tests.reach.conftest import NOON, content, reachable

BUDGET, BUDGET_DAYS = 3, 7
SMS_CAP = {"count": 2, "days": 10}

sends = st.lists(
    st.tuples(
        st.sampled_from(["broadcast", "journey", "staff", "api"]),
        st.lists(st.sampled_from(["sms", "email", "wecom"]), min_size=1, max_size=3, unique=True),
        st.sampled_from(["marketing", "marketing", "transactional"]),
        st.integers(min_value=0, max_value=40 * 24),  # hours after the start
        st.integers(min_value=0, max_value=4),  # content: repeats are de-duplicated
    ),
    min_size=1,
    max_size=25,
)


def _check_caps(messages: list[ReachMessage], zone: ZoneInfo) -> None:
    counted = sorted(
        (m for m in messages if m.status in {s.value for s in COUNTED_STATUSES}), key=lambda m: m.planned_at
    )
    marketing = [m for m in counted if m.purpose == "marketing"]
    for first in marketing:
        window = [
            m
            for m in marketing
            if first.planned_at <= m.planned_at < first.planned_at + timedelta(days=BUDGET_DAYS)
        ]
        assert len(window) <= BUDGET, "the marketing budget was broken"
        if first.channel == "sms":
            sms = [
                m
                for m in marketing
                if m.channel == "sms"
                and first.planned_at <= m.planned_at < first.planned_at + timedelta(days=SMS_CAP["days"])
            ]
            assert len(sms) <= SMS_CAP["count"], "the SMS cap was broken"
    mass = [m for m in counted if m.channel == "wecom" and m.source != "staff"]
    for message in mass:
        start, end, limit = calendar_period(message.planned_at, zone, "week")
        same = [m for m in mass if start <= m.planned_at.astimezone(zone).date() < end]
        assert len(same) <= limit, "the WeCom platform cap was broken"


def test_no_sequence_of_sends_breaks_a_cap(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        service.update_policy(
            session, actor=owner.actor,
            changes={"marketing_budget": BUDGET, "budget_days": BUDGET_DAYS, "channel_caps": {"sms": SMS_CAP},
                     "wecom_cap": "week", "dedup_hours": 48},
        )  # fmt: skip

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(sends)
    def run(plan: list[tuple[str, list[str], str, int, int]]) -> None:
        with db.transaction() as session:
            customer = reachable(session, workspace_id=workspace_id)
        for n, (source, channels, purpose, hours, tag) in enumerate(plan):
            with db.transaction() as session:
                service.send(
                    session, workspace_id=workspace_id, source=source, source_ref=f"r{n}", customer_ids=[customer],
                    content=content(str(tag)), purpose=purpose, channel_preference=channels,
                    now=NOON + timedelta(hours=hours),
                )  # fmt: skip
        with db.reader() as session:
            messages = list(session.scalars(select(ReachMessage).where(ReachMessage.customer_id == customer)))
        assert len(messages) == len(plan)  # every decision recorded, one per send
        _check_caps(messages, ZoneInfo("Asia/Shanghai"))

    run()


def test_concurrent_sources_cannot_both_pass_the_budget(db: Database, workspace_id: int) -> None:
    # on SQLite the writers serialise on the write lock; on PostgreSQL they race
    owner = member(db, workspace_id)
    with db.transaction() as session:
        service.update_policy(session, actor=owner.actor, changes={"marketing_budget": 2})
        customers = [reachable(session, workspace_id=workspace_id) for _ in range(5)]
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def source(n: int) -> None:
        try:
            start.wait()
            with db.transaction() as session:
                service.send(
                    session, workspace_id=workspace_id, source="journey", source_ref=f"j{n}",
                    customer_ids=customers[::-1] if n % 2 else customers, content=content(str(n)),
                    purpose="marketing", channel_preference=["sms", "email"], now=NOON,
                )  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=source, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with db.reader() as session:
        rows = list(session.execute(
            select(ReachMessage.customer_id, ReachMessage.status).where(ReachMessage.workspace_id == workspace_id)
        ))  # fmt: skip
    assert len(rows) == 8 * 5
    for customer in customers:
        statuses = [status for c, status in rows if c == customer]
        assert statuses.count("queued") == 2 and statuses.count("suppressed") == 6
