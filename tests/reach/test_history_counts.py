"""The gateway reads what it decides on in bulk: the facts of each customer narrowed to the channels of
the send (`reach_facts`), and on PostgreSQL the caps' counts around each planned time (`count_history`).
Both must give exactly the answers of the plain readings they replace, on random data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.customers.models import Consent, Customer, Identity
from siyu.reach.models import ReachMessage
from siyu.reach.service.history import Question, count_history, list_history, wecom_period

AT = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")


def _customers(db: Database, workspace_id: int, n: int, rng: random.Random) -> list[int]:
    now = utcnow()
    with db.transaction() as session:
        ids = []
        for i in range(n):
            attributes = {"timezone": rng.choice(["Asia/Tokyo", "Europe/Berlin", ""])} if i % 3 == 0 else {}
            customer = Customer(
                workspace_id=workspace_id, name=f"c{i}", gender="unknown", attributes=attributes,
                created_at=now, updated_at=now,
                erased_at=now if i % 11 == 5 else None,
            )  # fmt: skip
            session.add(customer)
            session.flush()
            ids.append(customer.id)
            for k in range(rng.choice([0, 1, 1, 2, 3])):
                session.add(Identity(
                    workspace_id=workspace_id, customer_id=customer.id,
                    kind=rng.choice(["phone", "email", "wecom_external_userid"]),
                    value=f"{workspace_id}-{customer.id}-{k}", created_at=now,
                ))  # fmt: skip
                session.flush()  # ids in creation order: the oldest is the first
            moment = AT - timedelta(days=rng.randrange(30))
            for _ in range(rng.choice([0, 1, 2, 4])):
                session.add(Consent(
                    workspace_id=workspace_id, customer_id=customer.id,
                    contact_channel=rng.choice(["sms", "wecom", "email"]),
                    purpose=rng.choice(["marketing", "transactional"]),
                    status=rng.choice(["granted", "withdrawn"]),
                    occurred_at=moment, created_at=now,
                ))  # fmt: skip
                session.flush()
                if rng.random() < 0.6:  # else the next decision shares the time: the later row wins
                    moment += timedelta(hours=rng.randrange(1, 48))
    return ids


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reach_facts_are_contact_facts_narrowed(db: Database, workspace_id: int, seed: int) -> None:
    rng = random.Random(seed)
    ids = _customers(db, workspace_id, 40, rng)
    kinds = {"phone", "wecom_external_userid"}
    consents = {("sms", "marketing"), ("wecom", "marketing"), ("email", "transactional")}
    with db.reader() as session:
        full = customers.contact_facts(session, workspace_id=workspace_id, customer_ids=[*ids, 10**12])
        narrow = customers.reach_facts(
            session, workspace_id=workspace_id, customer_ids=[*ids, 10**12], kinds=kinds, consents=consents
        )
    assert set(narrow) == set(full) == set(ids)
    for customer_id, facts in full.items():
        got = narrow[customer_id]
        assert (got.live, got.timezone) == (facts.live, facts.timezone)
        for kind in kinds:
            assert got.first(kind) == facts.first(kind), (customer_id, kind)
        assert got.consents == {k: v for k, v in facts.consents.items() if k in consents}, customer_id


def _messages(db: Database, workspace_id: int, ids: list[int], rng: random.Random) -> None:
    now = utcnow()
    rows = []
    for customer_id in ids:
        for n in range(rng.choice([0, 1, 3, 8, 15])):
            status = rng.choice(["queued", "sent", "delivered", "deferred", "held", "suppressed", "failed"])
            rows.append({
                "workspace_id": workspace_id, "customer_id": customer_id,
                "source": rng.choice(["broadcast", "journey", "staff", "api"]), "source_ref": "r", "step": "",
                "idempotency_key": f"k:{customer_id}:{n}", "purpose": rng.choice(["marketing", "transactional"]),
                "channel": rng.choice(["wecom", "sms", "email", None]), "address": None, "content": {},
                "content_hash": rng.choice(["a", "b"]), "status": status, "reason": None, "explanation": [],
                # at the hours the questions are planned at (and local midnight), many exactly at a window's edge
                "planned_at": AT + timedelta(days=rng.randrange(-40, 40), hours=rng.choice([0, 5, 12, 17])),
                "due_at": None, "attempts": 0, "created_at": now, "updated_at": now,
            })  # fmt: skip
    with db.transaction() as session:
        if rows:
            session.execute(insert(ReachMessage), rows)


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_counted_history_answers_as_the_listed_one(db: Database, workspace_id: int, seed: int) -> None:
    rng = random.Random(seed)
    with db.transaction() as session:
        now = utcnow()
        ids = []
        for i in range(60):
            customer = Customer(
                workspace_id=workspace_id, name=f"c{i}", gender="unknown", attributes={},
                created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(customer)
            session.flush()
            ids.append(customer.id)
    _messages(db, workspace_id, ids, rng)
    start, end = AT - timedelta(days=33), AT + timedelta(days=34)
    windows = {"sms": timedelta(days=rng.choice([1, 3, 7])), "wecom": timedelta(days=rng.choice([2, 5]))}
    dedup, budget = timedelta(hours=rng.choice([6, 24, 48])), timedelta(days=rng.choice([1, 7, 14]))
    mode = rng.choice(["day", "week", "month"])
    questions = []
    for customer_id in ids:
        planned = AT + timedelta(hours=rng.choice([0, 0, 5, 17, 24]))  # a few shared planned times
        period_start, period_end, _ = wecom_period(planned, ZONE, mode)
        questions.append(Question(customer_id, planned, (period_start, period_end)))
    with db.reader() as session:
        listed = list_history(session, workspace_id=workspace_id, customer_ids=ids, start=start, end=end)
        counted = count_history(
            session, workspace_id=workspace_id, questions=questions, digest="a", dedup_window=dedup,
            budget_window=budget, channel_windows=windows, start=start, end=end,
        )  # fmt: skip
    assert set(counted) == set(ids)
    for q in questions:
        plain = listed.get(q.customer_id)
        got = counted[q.customer_id]
        if plain is None:
            assert (got.duplicates, got.marketing, got.mass) == (False, 0, 0)
            assert all(count == 0 for _, count in got.channels.values())
            continue
        assert got.duplicate("a", q.planned, dedup) == plain.duplicate("a", q.planned, dedup)
        assert got.marketing_near(q.planned, budget) == plain.marketing_near(q.planned, budget)
        assert got.mass_wecom(*q.period) == plain.mass_wecom(*q.period)
        for channel, window in windows.items():
            assert got.channel_near(channel, q.planned, window) == plain.channel_near(
                channel, q.planned, window
            )


def test_a_counted_history_refuses_a_question_it_was_not_counted_for() -> None:
    from siyu.reach.service.history import CountedHistory

    history = CountedHistory(
        planned=AT, digest="a", dedup_window=timedelta(hours=24), budget_window=timedelta(days=7),
        period=(AT, AT + timedelta(days=1)), duplicates=False, marketing=1, mass=0,
        channels={"sms": (timedelta(days=3), 2)},
    )  # fmt: skip
    assert history.marketing_near(AT, timedelta(days=7)) == 1
    assert history.channel_near("sms", AT, timedelta(days=3)) == 2
    with pytest.raises(ValueError):
        history.marketing_near(AT + timedelta(hours=1), timedelta(days=7))
    with pytest.raises(ValueError):
        history.duplicate("b", AT, timedelta(hours=24))
    with pytest.raises(ValueError):
        history.mass_wecom(AT, AT + timedelta(days=7))
