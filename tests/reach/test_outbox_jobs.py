"""The outbox consumers of points, coupon refunds and referrals run from the worker's schedule, with no
CLI call: an invitee's order placed through the batch path (which leaves the consumers to the
scheduler) earns its points, redeems its coupon and qualifies the invite, which rewards the inviter;
its refund takes the points back and reverses the redemption; a further round changes nothing. On
PostgreSQL each consumer waits for an event whose transaction commits late instead of skipping it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from siyu.core import domain_events
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.schedule import Outcome, Scheduler
from siyu.coupons import service as coupons
from siyu.coupons.models import Coupon, CouponRedemption
from siyu.coupons.schemas import TemplateIn
from siyu.coupons.service import refunds
from siyu.ingest import service as ingest
from siyu.membership import service as membership
from siyu.membership.models import PointsEntry
from siyu.membership.schemas import RulesIn
from siyu.membership.service import orders as membership_orders
from siyu.reach.tasks import SCHEDULE, scheduler_for
from siyu.referrals.models import ReferralInvite
from siyu.referrals.schemas import TierIn
from siyu.referrals.service import events as referral_events
from tests.factories import Member, make_customer, member, next_phone, unique
from tests.referrals.helpers import campaign, invite, inviter, link

POINTS = "siyu.membership.tasks:process_order_events"
REFUNDS = "siyu.coupons.tasks:apply_order_events"
REFERRALS = "siyu.referrals.tasks:process_events"


class Rounds:
    """Scheduler rounds two seconds apart, so that every job running each second is due in each."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.now = datetime.now(UTC)

    def __call__(self) -> dict[str, Outcome]:
        self.now += timedelta(seconds=2)
        ran = {o.name: o for o in self.scheduler.run_due(self.now)}
        assert all(o.ok for o in ran.values()), ran
        return ran


def _import(session: Session, workspace_id: int, records: list[dict[str, Any]]) -> None:
    _, _, rejects = ingest.import_records(
        session, workspace_id=workspace_id, kind="orders", records=records, strict=True
    )
    assert rejects == [], rejects


def _load(db: Database, workspace_id: int, records: list[dict[str, Any]]) -> None:
    with db.transaction() as session:
        _import(session, workspace_id, records)


def _balance(db: Database, workspace_id: int, customer_id: int) -> int:
    with db.reader() as session:
        return membership.balance(session, workspace_id=workspace_id, customer_id=customer_id)


def _coupon(db: Database, owner: Member, customer_id: int) -> str:
    with db.transaction() as session:
        template = coupons.create_template(
            session,
            actor=owner.actor,
            body=TemplateIn(
                name=unique("满100减20"),
                type="amount_off",
                threshold_cents=10000,
                discount_cents=2000,
                valid_days=30,
            ),
        )
        return coupons.issue(
            session,
            workspace_id=owner.actor.workspace_id,
            template_id=template.id,
            customer_id=customer_id,
            source_kind="api",
            source_ref=None,
            idempotency_key=unique("k"),
        ).code


def _state(db: Database, workspace_id: int, code: str) -> tuple[Any, ...]:
    """Everything the three consumers write: points entries, the coupon, its redemptions, the invites."""
    with db.reader() as session:
        return (
            session.scalar(select(func.count()).where(PointsEntry.workspace_id == workspace_id)),
            session.scalar(select(Coupon.status).where(Coupon.code == code)),
            tuple(
                session.execute(
                    select(CouponRedemption.order_ref, CouponRedemption.reversed_at)
                    .join(Coupon, Coupon.id == CouponRedemption.coupon_id)
                    .where(Coupon.code == code)
                )
            ),
            tuple(
                session.execute(
                    select(ReferralInvite.status, ReferralInvite.qualifying_order_ref).where(
                        ReferralInvite.workspace_id == workspace_id
                    )
                )
            ),
        )


def test_the_schedule_runs_the_three_consumers() -> None:
    jobs = {job.name: job for job in SCHEDULE}
    for name in (POINTS, REFUNDS, REFERRALS):
        every = jobs[name].every
        assert every is not None and timedelta(seconds=1) <= every <= timedelta(seconds=2)


def test_an_invitees_order_and_its_refund_through_the_scheduler(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        membership.set_rules(session, actor=owner.actor, body=RulesIn(points_per_yuan=2))
    found = campaign(
        db, owner, [TierIn(threshold=1, points=80)], qualification="first_order", min_order_cents=5000
    )
    who = inviter(db, workspace_id)
    phone = next_phone()
    joined = invite(db, link(db, workspace_id, found.id, who), phone).invite
    assert joined.status == "joined"
    invitee = joined.invitee_customer_id
    code = _coupon(db, owner, invitee)
    rounds = Rounds(scheduler_for(db, workspace_id=workspace_id))
    first = rounds()  # every job once; nothing of theirs is pending yet
    assert {first[name].result for name in (POINTS, REFUNDS, REFERRALS)} == {"events 0"}

    order = {
        "external_id": unique("INV"),
        "phone": phone,
        "total_cents": 12800,
        "discount_cents": 2000,
        "paid_cents": 10800,
        "placed_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "status": "paid",
        "coupon_code": code,
    }
    _load(db, workspace_id, [order])
    # the import redeemed the coupon, and left points and referrals to the scheduler
    assert _balance(db, workspace_id, invitee) == 0 and _balance(db, workspace_id, who) == 0
    ran = rounds()
    assert (ran[POINTS].result, ran[REFERRALS].result, ran[REFUNDS].result) == (
        "events 1",
        "events 1",
        "events 0",
    )
    assert _balance(db, workspace_id, invitee) == 216  # ¥108 paid, 2 points a yuan
    assert _balance(db, workspace_id, who) == 80  # the first tier's reward
    placed = _state(db, workspace_id, code)
    assert placed[1] == "redeemed" and placed[3] == (("qualified", order["external_id"]),)
    again = rounds()
    assert {again[name].result for name in (POINTS, REFUNDS, REFERRALS)} == {"events 0"}
    assert _state(db, workspace_id, code) == placed

    _load(db, workspace_id, [{**order, "status": "refunded", "refunded_cents": 10800}])
    ran = rounds()
    assert (ran[POINTS].result, ran[REFUNDS].result, ran[REFERRALS].result) == (
        "events 1",
        "events 1",
        "events 1",
    )
    assert _balance(db, workspace_id, invitee) == 0  # the refund took the points back
    assert _balance(db, workspace_id, who) == 80  # an invite, once qualified, stays rewarded
    refunded = _state(db, workspace_id, code)
    [(order_ref, reversed_at)] = refunded[2]
    assert refunded[1] == "issued" and order_ref == order["external_id"] and reversed_at is not None
    for _ in range(2):  # further rounds change nothing
        again = rounds()
        assert {again[name].result for name in (POINTS, REFUNDS, REFERRALS)} == {"events 0"}
        assert _state(db, workspace_id, code) == refunded
        assert _balance(db, workspace_id, invitee) == 0 and _balance(db, workspace_id, who) == 80


# --- commit order (PostgreSQL) ------------------------------------------------------------------------


@dataclass
class Case:
    """One consumer: its job and cursor, what is set up for two customers ("late", "early"), the record
    each one's event comes from, and whether that event's effect is there."""

    job: str
    consumer: str
    prepare: Callable[[Database, int, dict[str, str]], None]
    record: Callable[[str, str], dict[str, Any]]
    handled: Callable[[Database, int, str], bool]


def _paid(phone: str, external_id: str) -> dict[str, Any]:
    placed = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return {"external_id": external_id, "phone": phone, "paid_cents": 10800, "placed_at": placed}


def _earned(db: Database, workspace_id: int, external_id: str) -> bool:
    with db.reader() as session:
        return bool(
            session.scalar(
                select(func.count()).where(
                    PointsEntry.workspace_id == workspace_id,
                    PointsEntry.source_kind == "order",
                    PointsEntry.source_ref == external_id,
                )
            )
        )


def _redeemed_orders(db: Database, workspace_id: int, phones: dict[str, str]) -> None:
    owner = member(db, workspace_id)
    for name, phone in phones.items():
        with db.transaction() as session:
            customer = make_customer(session, workspace_id=workspace_id, phone=phone)
        code = _coupon(db, owner, customer.id)
        _load(db, workspace_id, [{**_paid(phone, f"C-{name}"), "total_cents": 12800, "coupon_code": code}])


def _reversed(db: Database, workspace_id: int, external_id: str) -> bool:
    with db.reader() as session:
        return bool(
            session.scalar(
                select(func.count()).where(
                    CouponRedemption.workspace_id == workspace_id,
                    CouponRedemption.order_ref == external_id,
                    CouponRedemption.reversed_at.is_not(None),
                )
            )
        )


def _invited(db: Database, workspace_id: int, phones: dict[str, str]) -> None:
    owner = member(db, workspace_id)
    found = campaign(
        db, owner, [TierIn(threshold=5, points=80)], qualification="first_order", min_order_cents=5000
    )
    mine = link(db, workspace_id, found.id, inviter(db, workspace_id))
    for phone in phones.values():
        assert invite(db, mine, phone).invite.status == "joined"


def _qualified(db: Database, workspace_id: int, external_id: str) -> bool:
    with db.reader() as session:
        return bool(
            session.scalar(
                select(func.count()).where(
                    ReferralInvite.workspace_id == workspace_id,
                    ReferralInvite.qualifying_order_ref == external_id,
                    ReferralInvite.status == "qualified",
                )
            )
        )


CASES = {
    "points": Case(
        POINTS,
        membership_orders.CONSUMER,
        lambda db, ws, phones: None,
        lambda name, phone: {**_paid(phone, f"P-{name}"), "status": "paid"},
        lambda db, ws, name: _earned(db, ws, f"P-{name}"),
    ),
    "coupon refunds": Case(
        REFUNDS,
        refunds.CONSUMER,
        _redeemed_orders,
        lambda name, phone: {
            **_paid(phone, f"C-{name}"),
            "total_cents": 12800,
            "status": "refunded",
            "refunded_cents": 10800,
        },
        lambda db, ws, name: _reversed(db, ws, f"C-{name}"),
    ),
    "referrals": Case(
        REFERRALS,
        referral_events.CONSUMER,
        _invited,
        lambda name, phone: {**_paid(phone, f"R-{name}"), "status": "paid"},
        lambda db, ws, name: _qualified(db, ws, f"R-{name}"),
    ),
}


@pytest.mark.postgres  # SQLite has one writer at a time: ids commit in order there
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_an_event_committed_late_is_not_skipped(db: Database, workspace_id: int, case: Case) -> None:
    phones = {"late": next_phone(), "early": next_phone()}
    case.prepare(db, workspace_id, phones)
    [job] = [j for j in SCHEDULE if j.name == case.job]
    rounds = Rounds(scheduler_for(db, workspace_id=workspace_id, jobs=[job]))
    rounds()
    with db.transaction() as t1:
        _import(t1, workspace_id, [case.record("late", phones["late"])])
        t1.flush()
        t1_tx = int(t1.scalar(text("SELECT pg_current_xact_id()::text::bigint")))
        t1_event = t1.scalar(
            select(func.max(DomainEvent.id)).where(
                DomainEvent.workspace_id == workspace_id, DomainEvent.tx_id == t1_tx
            )
        )
        with db.transaction() as t2:
            _import(t2, workspace_id, [case.record("early", phones["early"])])
        with db.reader() as session:
            t2_event = session.scalar(
                select(func.max(DomainEvent.id)).where(DomainEvent.workspace_id == workspace_id)
            )
        assert t1_event is not None and t2_event is not None and t2_event > t1_event
        rounds()  # T1 is still open
        with db.reader() as session:
            position, _ = domain_events.position_of(
                session, consumer=case.consumer, workspace_id=workspace_id
            )
        assert position.tx_id < t1_tx  # the cursor did not pass T1
        assert not case.handled(db, workspace_id, "late")
    # T1 has committed: both are handled (another transaction of the database may hold the horizon back
    # for a moment, so look again for a few seconds)
    deadline = time.monotonic() + 10
    while not (case.handled(db, workspace_id, "late") and case.handled(db, workspace_id, "early")):
        assert time.monotonic() < deadline, "the late event was never handled"
        rounds()
        time.sleep(0.05)
