"""No step runs twice: two engines at once (threads; SQLite serialises them on its write lock,
PostgreSQL's claims skip the rows the other holds), checked against the execution log and the outbox;
and a property test: no sequence of journey sends breaks the marketing budget."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from siyu.core.db import Database
from siyu.journeys import service as journeys
from siyu.journeys.models import JourneyStepRun
from siyu.journeys.tasks import JourneyEngine
from siyu.reach import service as reach
from siyu.reach.models import COUNTED_STATUSES, ReachMessage
from tests.factories import member
from tests.journeys.conftest import at, emit, event_trigger, make_journey, next_due, send, stays, tick
from tests.reach.conftest import reachable

CUSTOMERS = 60


def _run_together(engines: list[JourneyEngine], now: datetime) -> None:
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def work(engine: JourneyEngine) -> None:
        try:
            barrier.wait()
            engine.run_once(now=now)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_two_engines_never_run_a_step_twice(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(CUSTOMERS)]
    steps = [send("a"), {"id": "w", "kind": "wait", "hours": 1}, send("b", purpose="transactional")]
    journey_id = make_journey(db, owner.actor, {"trigger": event_trigger(), "steps": steps})
    for customer in ids:
        emit(db, workspace_id, "order.placed", customer)
    tick_engines = [JourneyEngine(db, batch_size=7, workspace_id=workspace_id) for _ in range(2)]
    for now in (at(), at(hours=1)):
        _run_together(tick_engines, now)
    with db.reader() as session:
        logged = session.execute(
            select(
                func.count(),
                func.count(func.distinct(JourneyStepRun.enrolment_id.concat(JourneyStepRun.step_id))),
            ).where(JourneyStepRun.journey_id == journey_id)
        ).one()
        messages = session.scalar(
            select(func.count()).where(
                ReachMessage.source == "journey", ReachMessage.source_ref == str(journey_id)
            )
        )
    assert logged == (CUSTOMERS * 3, CUSTOMERS * 3)
    assert messages == CUSTOMERS * 2
    assert all(s.status == "completed" for s in stays(db, journey_id))
    assert sum(e.stats.conflicts for e in tick_engines) == 0
    assert sum(e.stats.steps for e in tick_engines) == CUSTOMERS * 3  # each step counted by one engine


journeys_plan = st.lists(
    st.lists(st.integers(min_value=1, max_value=96), min_size=1, max_size=4),  # hours before each send
    min_size=1,
    max_size=4,
)


def test_no_sequence_of_journey_sends_breaks_the_budget(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    budget, budget_days = 2, 7
    with db.transaction() as session:
        reach.update_policy(
            session, actor=owner.actor, changes={"marketing_budget": budget, "budget_days": budget_days}
        )

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(journeys_plan)
    def run(plan: list[list[int]]) -> None:
        with db.transaction() as session:
            customer = reachable(session, workspace_id=workspace_id)
        event = "tag.added"
        made: list[int] = []
        for n, gaps in enumerate(plan):
            steps: list[dict[str, object]] = []
            for k, gap in enumerate(gaps):
                steps += [
                    {"id": f"w{k}", "kind": "wait", "hours": gap},
                    send(f"j{n}s{k}", text=f"内容{n}-{k}"),
                ]
            made.append(make_journey(db, owner.actor, {"trigger": event_trigger(event), "steps": steps}))
        emit(db, workspace_id, event, customer)
        now = at()
        while now is not None:  # from one timer to the next
            tick(db, workspace_id, now)
            now = next_due(db, workspace_id)
        with db.reader() as session:
            counted = sorted(
                session.scalars(
                    select(ReachMessage.planned_at).where(
                        ReachMessage.workspace_id == workspace_id,
                        ReachMessage.customer_id == customer,
                        ReachMessage.purpose == "marketing",
                        ReachMessage.status.in_([s.value for s in COUNTED_STATUSES]),
                    )
                )
            )
        for first in counted:
            window = [t for t in counted if first <= t < first + timedelta(days=budget_days)]
            assert len(window) <= budget, "journey sends broke the marketing budget"
        with db.transaction() as session:  # the next example starts with no journey live
            for journey_id in made:
                journeys.set_status(session, actor=owner.actor, journey_id=journey_id, action="archive")

    run()
