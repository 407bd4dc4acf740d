"""No sequence of broadcasts breaks the workspace's marketing budget: a property test over random
broadcasts (audiences, channels, times, contents, variants, pauses and cancels), decided end to end
through the broadcasts service and the gateway."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.broadcasts import service, tasks
from siyu.core.db import Database
from siyu.reach import service as reach
from siyu.reach.models import COUNTED_STATUSES, ReachMessage
from tests.broadcasts.conftest import CONTENT, NOON, customer
from tests.factories import member, unique

BUDGET, BUDGET_DAYS = 2, 7

plans = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=30 * 24),  # hours after the start
        st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=6, unique=True),  # audience
        st.sampled_from([["wecom", "sms"], ["sms"], ["email", "sms"], ["wecom"]]),
        st.integers(min_value=0, max_value=3),  # content: repeats are de-duplicated
        st.booleans(),  # two variants
        st.sampled_from(["send", "pause_resume", "cancel"]),
    ),
    min_size=1,
    max_size=8,
)


def test_no_sequence_of_broadcasts_breaks_the_budget(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        reach.update_policy(
            session, actor=owner.actor, changes={"marketing_budget": BUDGET, "budget_days": BUDGET_DAYS}
        )

    # no shrinking: it takes minutes over a database; a failing plan is printed as generated
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    @given(plans)
    def run(plan: list[tuple[int, list[int], list[str], int, bool, str]]) -> None:
        with db.transaction() as session:
            pool = [
                customer(session, workspace_id=workspace_id, city="x", wecom=n % 2 == 0) for n in range(6)
            ]
        for hours, members, channels, tag, split, op in sorted(plan):
            at = NOON + timedelta(hours=hours)
            content = {c: {k: f"{v} {tag}" for k, v in CONTENT[c].items()} for c in channels}
            variants = (
                {
                    "a": {"content": content},
                    "b": {
                        "content": {c: {k: f"b {v}" for k, v in body.items()} for c, body in content.items()}
                    },
                }
                if split
                else None
            )
            with db.transaction() as session:
                broadcast = service.create_broadcast(
                    session, actor=owner.actor, name=unique("b"), purpose="marketing", channel_preference=channels,
                    content=content, customer_ids=[pool[m] for m in members], variants=variants,
                )  # fmt: skip
                service.start_broadcast(session, actor=owner.actor, broadcast_id=broadcast.id, now=at)
            if op == "cancel":
                with db.transaction() as session:
                    service.cancel_broadcast(session, actor=owner.actor, broadcast_id=broadcast.id, now=at)
            if op == "pause_resume":
                with db.transaction() as session:
                    service.pause_broadcast(session, actor=owner.actor, broadcast_id=broadcast.id, now=at)
                tasks.run_due(db, now=at)
                with db.transaction() as session:
                    service.resume_broadcast(session, actor=owner.actor, broadcast_id=broadcast.id, now=at)
            tasks.run_due(db, now=at)
            with db.reader() as session:
                progress = service.progress(session, actor=owner.actor, broadcast_id=broadcast.id)
            assert sum(progress.counts.values()) == progress.audience == len(members)
        with db.reader() as session:
            rows = list(
                session.scalars(
                    select(ReachMessage).where(
                        ReachMessage.workspace_id == workspace_id,
                        ReachMessage.customer_id.in_(pool),
                        ReachMessage.status.in_([s.value for s in COUNTED_STATUSES]),
                        ReachMessage.purpose == "marketing",
                    )
                )
            )
        for customer_id in pool:
            times = sorted(m.planned_at for m in rows if m.customer_id == customer_id)
            for first in times:
                window = [t for t in times if first <= t < first + timedelta(days=BUDGET_DAYS)]
                assert len(window) <= BUDGET, (
                    f"customer {customer_id} got {len(window)} in {BUDGET_DAYS} days"
                )

    run()
