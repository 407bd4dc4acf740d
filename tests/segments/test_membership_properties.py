"""Property: random sequences of writes through the real verbs (order, refund and event imports, tags,
consent, profile edits, merges, erasure, new customers, time passing), interleaved with incremental
processing, leave every segment's kept membership equal to a from-scratch evaluation — zero drift — and
the segment.entered / segment.left events replay to exactly that membership; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.customers import identity, privacy
from siyu.customers import service as customers
from siyu.customers.models import Customer
from siyu.customers.schemas import ProfileUpdate
from siyu.ingest import service as ingest
from siyu.segments import membership
from siyu.segments import service as segments
from siyu.segments.models import Segment
from siyu.tags import service as tags
from siyu.workspaces import service as workspaces
from tests.factories import make_member, make_tag, next_phone

# the clock starts in the past and moves forward at most 18 x 5 days: writes stamped with it are never in
# the future, which the verbs refuse
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=100)
PEOPLE = 5
EXAMPLES = 8  # per engine, besides the explicit examples: the file runs in well under a minute
RULES = {
    "复购": "order_count >= 2",
    "近30天": 'orders(within="30d").count >= 1',
    "VIP": 'tag("VIP")',
    "可短信": 'consent(channel="sms")',
    "上海": 'city = "上海"',
    "复购非VIP": 'segment("复购") and not tag("VIP")',
    "消费50": "net_revenue >= 50",
    "打开过": 'events(type="message.opened", within="14d").count >= 1',
    "有过打开": 'events(type="message.opened").count >= 1',
    "上海买过": 'tag("上海客") and order_count >= 1',  # reads the rule tag of 上海
}

_person = st.integers(0, PEOPLE - 1)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            _person,
            st.sampled_from([1000, 3000, 8000]),
            st.integers(0, 40),
            st.sampled_from(["paid", "paid", "cancelled"]),
        ),
        st.tuples(st.just("refund"), st.integers(0, 20)),
        st.tuples(st.just("tag"), _person, st.booleans()),
        st.tuples(st.just("consent"), _person, st.sampled_from(["granted", "withdrawn"])),
        st.tuples(st.just("city"), _person, st.sampled_from(["上海", "北京", None])),
        st.tuples(st.just("event"), _person, st.integers(0, 20)),
        st.tuples(st.just("merge"), _person, _person),
        st.tuples(st.just("erase"), _person),
        st.tuples(st.just("customer"), _person),
        st.tuples(st.just("tick"), st.integers(1, 5)),
        st.just(("process",)),
    ),
    min_size=1,
    max_size=18,
)


class World:
    """The workspace under test and what the test knows about it (phones of the people, orders)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.clock = NOW
        with db.transaction() as session:
            self.workspace_id = workspaces.create_workspace(
                session, slug=f"live-{uuid.uuid4().hex[:10]}", name="L"
            ).id
            self.actor = make_member(session, workspace_id=self.workspace_id).actor
            self.vip = make_tag(session, actor=self.actor, name="VIP").id
            shanghai_tag = make_tag(session, actor=self.actor, name="上海客").id
            for name, rule in RULES.items():
                segment = segments.create_segment(session, actor=self.actor, name=name, rule=rule)
                if name == "上海":
                    segments.set_rule_tag(
                        session, actor=self.actor, segment_id=segment.id, tag_id=shanghai_tag
                    )
        self.phones = [next_phone() for _ in range(PEOPLE)]
        self.orders: list[tuple[str, str, int, str]] = []  # external id, phone, paid, placed_at
        self._import("customers", [{"phone": p, "city": "上海"} for p in self.phones])
        # start from a current membership, so that every later change must be carried by its own events
        self.catch_up()

    def catch_up(self) -> None:
        """Process until nothing is pending (also the events processing itself caused, e.g. rule tags),
        a few events per transaction."""
        while True:
            with self.db.transaction() as session:
                run = segments.process_pending(
                    session, workspace_id=self.workspace_id, limit=7, now=self.clock
                )
            if run.events == 0:
                return

    def _import(self, kind: str, records: list[dict[str, Any]]) -> None:
        with self.db.transaction() as session:
            _, _, rejects = ingest.import_records(
                session, workspace_id=self.workspace_id, kind=kind, records=records, strict=True
            )
            assert rejects == [], rejects

    def _live_id(self, person: int) -> int | None:
        with self.db.reader() as session:
            found, _ = customers.customer_ids_by_identity(
                session, actor=self.actor, kind="phone", values=[self.phones[person]]
            )
        return found.get(self.phones[person])

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "order":
            _, person, paid, days_ago, status = op
            external_id = f"o{len(self.orders)}"
            placed = (self.clock - timedelta(days=days_ago)).isoformat()
            self.orders.append((external_id, self.phones[person], paid, placed))
            self._import(
                "orders",
                [
                    {
                        "external_id": external_id,
                        "phone": self.phones[person],
                        "status": status,
                        "paid_cents": paid,
                        "placed_at": placed,
                    }
                ],
            )
        elif kind == "refund":
            if op[1] < len(self.orders):
                external_id, phone, paid, placed = self.orders[op[1]]
                self._import(
                    "orders",
                    [
                        {
                            "external_id": external_id,
                            "phone": phone,
                            "status": "refunded",
                            "paid_cents": paid,
                            "refunded_cents": paid,
                            "placed_at": placed,
                        }
                    ],
                )
        elif kind == "event":
            _, person, days_ago = op
            self._import(
                "events",
                [
                    {
                        "phone": self.phones[person],
                        "type": "message.opened",
                        "occurred_at": (self.clock - timedelta(days=days_ago)).isoformat(),
                    }
                ],
            )
        elif kind == "customer":
            self.phones[op[1]] = next_phone()
            self._import("customers", [{"phone": self.phones[op[1]], "city": "上海"}])
        elif kind == "tick":
            self.clock += timedelta(days=op[1])
        elif kind == "process":
            self.catch_up()
        else:
            self._customer_write(op)

    def _customer_write(self, op: tuple[Any, ...]) -> None:
        customer_id = self._live_id(op[1])
        if customer_id is None:
            return
        with self.db.transaction() as session:
            if op[0] == "tag":
                if op[2]:
                    tags.tag_customer(session, actor=self.actor, customer_id=customer_id, tag_id=self.vip)
                else:
                    tags.untag_customer(session, actor=self.actor, customer_id=customer_id, tag_id=self.vip)
            elif op[0] == "consent":
                customers.record_consent(
                    session,
                    actor=self.actor,
                    customer_id=customer_id,
                    contact_channel="sms",
                    purpose="marketing",
                    status=op[2],
                    occurred_at=self.clock,
                )
            elif op[0] == "city":
                customers.update_profile(
                    session, actor=self.actor, customer_id=customer_id, changes=ProfileUpdate(city=op[2])
                )
            elif op[0] == "merge":
                merged_id = self._live_id_in(session, op[2])
                if merged_id is not None and merged_id != customer_id:
                    identity.merge_customers(
                        session,
                        workspace_id=self.workspace_id,
                        survivor_id=customer_id,
                        merged_id=merged_id,
                        reason="test",
                        actor_user_id=self.actor.user_id,
                    )
            elif op[0] == "erase":
                privacy.erase_person(session, actor=self.actor, customer_id=customer_id)

    def _live_id_in(self, session: Any, person: int) -> int | None:
        found, _ = customers.customer_ids_by_identity(
            session, actor=self.actor, kind="phone", values=[self.phones[person]]
        )
        customer_id = found.get(self.phones[person])
        if customer_id is None:
            return None
        customer = session.get(Customer, customer_id)
        return customer_id if customer.merged_into_id is None and customer.erased_at is None else None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure prints its operations
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
# each kind of write on its own customer, so that a family an event fails to reach shows as drift
@example(
    ops=[
        ("tag", 0, True),
        ("consent", 1, "granted"),
        ("city", 2, "北京"),
        ("order", 3, 8000, 1, "paid"),
        ("event", 4, 1),
        ("process",),
        ("order", 3, 3000, 2, "paid"),
    ]
)
@example(
    ops=[("order", 0, 8000, 1, "paid"), ("tag", 1, True), ("process",), ("refund", 0), ("tag", 1, False)]
)
@example(ops=[("order", 0, 3000, 1, "paid"), ("merge", 1, 0), ("process",), ("erase", 2), ("customer", 3)])
def test_incremental_membership_equals_full_evaluation(db: Database, ops: list[tuple[Any, ...]]) -> None:
    world = World(db)
    for op in ops:
        world.apply(op)
    with db.transaction() as session:
        # rules that do not depend on time are kept by the events alone
        drift = segments.reconcile(session, workspace_id=world.workspace_id, now=world.clock)
        timed = {s.id for s in segments.segment_statuses(session, actor=world.actor) if s.time_dependent}
    assert [
        (d.name, d.missing, d.extra) for d in drift if d.segment_id not in timed and (d.missing or d.extra)
    ] == [], ops
    assert [(d.name, d.error) for d in drift if d.error] == [], ops
    with db.transaction() as session:
        # time-dependent rules are the sweep's as well: after one sweep, no segment drifts
        segments.sweep(session, workspace_id=world.workspace_id, now=world.clock)
        drift = segments.reconcile(session, workspace_id=world.workspace_id, now=world.clock)
    assert [(d.name, d.missing, d.extra) for d in drift if d.missing or d.extra] == [], ops
    with db.reader() as session:
        stored = {
            s.id: membership.current_members(session, segment=s)
            for s in session.scalars(select(Segment).where(Segment.workspace_id == world.workspace_id))
        }
        replayed: dict[int, set[int]] = {s: set() for s in stored}
        erased: set[int] = set()
        for type_, customer_id, payload in session.execute(
            select(DomainEvent.type, DomainEvent.customer_id, DomainEvent.payload)
            .where(
                DomainEvent.workspace_id == world.workspace_id,
                DomainEvent.type.in_(["segment.entered", "segment.left"]),
            )
            .order_by(DomainEvent.id)
        ):
            if "segment_id" not in payload or customer_id in erased:
                # erasure empties the payloads of the customer's events; an erased customer is in no
                # segment (checked below), so their history is not replayed
                erased.add(customer_id)
                continue
            members = replayed[payload["segment_id"]]
            if type_ == "segment.entered":
                assert customer_id not in members, ("entered twice", payload, ops)
                members.add(customer_id)
            else:
                assert customer_id in members, ("left without entering", payload, ops)
                members.remove(customer_id)
    assert all(not (members & erased) for members in stored.values()), ops
    assert replayed == {s: members - erased for s, members in stored.items()}, ops
