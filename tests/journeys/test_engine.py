"""The engine on both engines: each trigger and step kind, waits through timers at an injected `now`,
re-entry rules, goal exit and versioning choices for customers in flight."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import event, select

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.coupons import service as coupons
from siyu.coupons.models import CouponType
from siyu.coupons.schemas import TemplateIn
from siyu.customers.models import Customer
from siyu.experiments import service as experiments
from siyu.journeys import service
from siyu.journeys.models import StaffTask
from siyu.reach.models import ReachMessage
from siyu.segments import service as segments
from siyu.tags import service as tags
from tests.factories import make_customer, make_order, member
from tests.journeys.conftest import at, emit, event_trigger, make_journey, runs, send, stays, tick
from tests.reach.conftest import reachable


def _messages(db: Database, journey_id: int) -> list[ReachMessage]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(ReachMessage)
                .where(ReachMessage.source == "journey", ReachMessage.source_ref == str(journey_id))
                .order_by(ReachMessage.id)
            )
        )


def test_event_trigger_send_wait_send_through_timers(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    journey_id = make_journey(
        db,
        owner.actor,
        {
            "trigger": event_trigger(),
            "steps": [send("hello"), {"id": "pause", "kind": "wait", "days": 1}, send("again")],
        },
    )
    emit(db, workspace_id, "order.placed", customer)
    tick(db, workspace_id, at())
    (stay,) = stays(db, journey_id)
    assert (stay.status, stay.step_id, stay.waiting) == ("active", "pause", True)
    assert stay.due_at == at(days=1)
    assert [m.step for m in _messages(db, journey_id)] == [f"hello:{stay.id}"]
    tick(db, workspace_id, at(hours=23))  # not due yet: nothing runs
    assert [r[1] for r in runs(db, journey_id)] == ["hello", "pause"]
    tick(db, workspace_id, at(days=1))
    (stay,) = stays(db, journey_id)
    assert (stay.status, stay.exit_reason) == ("completed", "end")
    assert [r[1] for r in runs(db, journey_id)] == ["hello", "pause", "again"]
    assert len(_messages(db, journey_id)) == 2


def test_a_paused_journey_runs_nothing_and_an_archived_one_exits_everyone(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    journey_id = make_journey(
        db,
        owner.actor,
        {"trigger": event_trigger(), "steps": [{"id": "w", "kind": "wait", "hours": 1}, send("s")]},
    )
    emit(db, workspace_id, "order.placed", customer)
    tick(db, workspace_id, at())
    with db.transaction() as session:
        service.set_status(session, actor=owner.actor, journey_id=journey_id, action="pause")
    tick(db, workspace_id, at(hours=2))
    assert [r[1] for r in runs(db, journey_id)] == ["w"]
    with db.transaction() as session:
        service.set_status(session, actor=owner.actor, journey_id=journey_id, action="archive")
    (stay,) = stays(db, journey_id)
    assert (stay.status, stay.exit_reason) == ("exited", "archived")


@pytest.mark.parametrize(
    ("mode", "second_after_days", "expected"),
    [("never", 30, 1), ("after_days", 3, 1), ("after_days", 8, 2), ("always", 0, 2)],
)
def test_reentry_rules(
    db: Database, workspace_id: int, mode: str, second_after_days: int, expected: int
) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    reentry = {"mode": mode, "days": 7} if mode == "after_days" else {"mode": mode}
    journey_id = make_journey(
        db, owner.actor, {"trigger": event_trigger(), "reentry": reentry, "steps": [send("s")]}
    )
    emit(db, workspace_id, "order.placed", customer)
    tick(db, workspace_id, at())
    emit(db, workspace_id, "order.placed", customer)
    tick(db, workspace_id, at(days=second_after_days))
    assert len(stays(db, journey_id)) == expected
    assert [s.number for s in stays(db, journey_id)] == list(range(1, expected + 1))


def test_no_second_stay_while_one_is_in_flight(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    journey_id = make_journey(
        db,
        owner.actor,
        {
            "trigger": event_trigger(),
            "reentry": {"mode": "always"},
            "steps": [{"id": "w", "kind": "wait", "days": 5}],
        },
    )
    emit(db, workspace_id, "order.placed", customer)
    emit(db, workspace_id, "order.placed", customer)
    tick(db, workspace_id, at())
    assert len(stays(db, journey_id)) == 1


def test_goal_exits_and_wait_for_event_resumes_or_times_out(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        buyer, silent, goal = (reachable(session, workspace_id=workspace_id) for _ in range(3))
    journey_id = make_journey(
        db,
        owner.actor,
        {
            "trigger": event_trigger("wecom.friend_added"),
            "goal": {"event": "coupon.redeemed"},
            "steps": [
                {
                    "id": "watch",
                    "kind": "wait_event",
                    "event": "order.placed",
                    "timeout_hours": 48,
                    "timeout_next": "nudge",
                },
                send("thanks", next="end"),
                send("nudge"),
                {"id": "end", "kind": "exit"},
            ],
        },
    )
    for customer in (buyer, silent, goal):
        emit(db, workspace_id, "wecom.friend_added", customer)
    tick(db, workspace_id, at())
    emit(db, workspace_id, "order.placed", buyer)
    emit(db, workspace_id, "coupon.redeemed", goal)
    tick(db, workspace_id, at(hours=1))
    by_customer = {s.customer_id: s for s in stays(db, journey_id)}
    assert (by_customer[buyer].status, by_customer[buyer].exit_reason) == ("completed", "exit")
    assert (by_customer[goal].status, by_customer[goal].exit_reason) == ("goal", "goal")
    assert by_customer[silent].status == "active" and by_customer[silent].waiting_event == "order.placed"
    tick(db, workspace_id, at(hours=48))
    steps = {
        (s.customer_id): [r[1] for r in runs(db, journey_id) if r[0] == s.id] for s in stays(db, journey_id)
    }
    assert steps[buyer] == ["watch", "thanks", "end"]
    assert steps[silent] == ["watch", "nudge", "end"]
    assert steps[goal] == ["watch"]


def test_an_event_before_the_stay_does_not_end_it(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    journey_id = make_journey(
        db,
        owner.actor,
        {
            "trigger": event_trigger("wecom.friend_added"),
            "goal": {"event": "order.placed"},
            "steps": [{"id": "w", "kind": "wait", "days": 3}],
        },
    )
    emit(db, workspace_id, "order.placed", customer)
    emit(db, workspace_id, "wecom.friend_added", customer)
    tick(db, workspace_id, at())
    (stay,) = stays(db, journey_id)
    assert stay.status == "active"


def test_segment_entered_trigger_and_condition_branch(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        vip = reachable(session, workspace_id=workspace_id, attributes={"level": "gold"})
        plain = reachable(session, workspace_id=workspace_id, attributes={"level": "silver"})
        before = reachable(session, workspace_id=workspace_id)
        make_order(session, workspace_id=workspace_id, customer_id=before)
        segment = segments.create_segment(
            session, actor=owner.actor, name="buyers", rule="order_count >= 1", accept_warnings=True
        )
    journey_id = make_journey(
        db,
        owner.actor,
        {
            "trigger": {"kind": "segment_entered", "segment_id": segment.id},
            "steps": [
                {
                    "id": "gold",
                    "kind": "condition",
                    "rule": 'attr.level = "gold"',
                    "then": "vip",
                    "else": "std",
                },
                send("vip", next="end"),
                send("std"),
                {"id": "end", "kind": "exit"},
            ],
        },
    )
    with db.transaction() as session:
        for c in (vip, plain):
            make_order(session, workspace_id=workspace_id, customer_id=c)
        segments.reconcile(session, workspace_id=workspace_id, repair=True)  # their segment.entered
    tick(db, workspace_id, at())
    paths = {
        s.customer_id: [r[1] for r in runs(db, journey_id) if r[0] == s.id] for s in stays(db, journey_id)
    }
    # the customer who entered before the journey went live is not enrolled
    assert paths == {vip: ["gold", "vip", "end"], plain: ["gold", "std", "end"]}


def test_tag_task_coupon_and_split_steps(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = member(db, workspace_id, Role.STAFF)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id, owner_user_id=staff.user_id).id
        group = tags.create_group(session, actor=owner.actor, name="SOP")
        tag = tags.create_tag(session, actor=owner.actor, group_id=group.id, name="welcomed")
        template = coupons.create_template(
            session,
            actor=owner.actor,
            body=TemplateIn(name="新人券", type=CouponType.NO_THRESHOLD, discount_cents=500, valid_days=7),
        )
        experiment = experiments.create_experiment(
            session, actor=owner.actor, key="welcome-ab", name="AB", variants={"a": 1, "b": 1}
        )
        experiments.start_experiment(session, actor=owner.actor, experiment_id=experiment.id)
    journey_id = make_journey(
        db,
        owner.actor,
        {
            "trigger": event_trigger("customer.created"),
            "steps": [
                {"id": "tag", "kind": "tag", "tag_id": tag.id},
                {"id": "gift", "kind": "coupon", "template_id": template.id},
                {
                    "id": "ab",
                    "kind": "split",
                    "experiment_id": experiment.id,
                    "branches": {"a": "call", "b": "call"},
                },
                {"id": "call", "kind": "task", "title": "1v1 回访", "due_hours": 24},
                {"id": "untag", "kind": "tag", "tag_id": tag.id, "action": "remove"},
            ],
        },
    )
    emit(db, workspace_id, "customer.created", customer)
    tick(db, workspace_id, at())
    assert [r[1] for r in runs(db, journey_id)] == ["tag", "gift", "ab", "call", "untag"]
    with db.reader() as session:
        (task,) = session.scalars(select(StaffTask).where(StaffTask.journey_id == journey_id))
        assert (task.assignee_user_id, task.due_at) == (staff.user_id, at(hours=24))
        assert (
            coupons.coupons_of_customer(session, workspace_id=workspace_id, customer_id=customer)[
                0
            ].template_id
            == template.id
        )
        assert tags.tags_of_customer(session, workspace_id=workspace_id, customer_id=customer) == []
        assert experiments.assign(
            session, workspace_id=workspace_id, experiment_id=experiment.id, customer_id=customer
        ) in ("a", "b")
    (stay,) = stays(db, journey_id)
    assert stay.context["variant:ab"] in ("a", "b")


def test_wait_until_a_time_of_day_on_weekdays_in_the_workspace_zone(db: Database, workspace_id: int) -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    saturday_noon = at().replace(year=2026, month=6, day=6)  # 2026-06-06 is a Saturday
    due = service.wait_until("10:00", [1, 2, 3, 4, 5], now=saturday_noon, zone=zone)
    assert due.astimezone(zone).isoformat() == "2026-06-08T10:00:00+08:00"
    assert service.wait_until("13:00", None, now=saturday_noon, zone=zone).astimezone(zone).hour == 13


def test_repurchase_reminder_at_the_customers_own_cycle(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        regular = reachable(session, workspace_id=workspace_id)
        for days_ago in (30, 10):  # one order every 20 days, the last 10 days before T0
            make_order(session, workspace_id=workspace_id, customer_id=regular, placed_at=at(days=-days_ago))
        once = reachable(session, workspace_id=workspace_id)
        make_order(session, workspace_id=workspace_id, customer_id=once, placed_at=at(days=-5))
    wait = {"id": "cycle", "kind": "wait", "days_from": "repurchase_cycle", "days_before": 2, "days": 30}
    journey_id = make_journey(db, owner.actor, {"trigger": event_trigger(), "steps": [wait, send("remind")]})
    emit(db, workspace_id, "order.placed", regular)
    emit(db, workspace_id, "order.placed", once)
    tick(db, workspace_id, at())
    due = {s.customer_id: s.due_at for s in stays(db, journey_id)}
    assert due[regular] == at(days=-10 + 20 - 2)  # their own 20-day cycle, 2 days early
    assert due[once] == at(days=-5 + 30 - 2)  # one order: the step's fallback cycle


def test_birthday_trigger(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        born = reachable(session, workspace_id=workspace_id)
        other = reachable(session, workspace_id=workspace_id)
        session.get(Customer, born).birthday = date(1990, 6, 3)  # T0 is 1 June, 12:00 in Shanghai
        session.get(Customer, other).birthday = date(1990, 7, 1)
    trigger = {"kind": "date", "attribute": "birthday", "days_before": 1, "at": "10:00"}
    journey_id = make_journey(db, owner.actor, {"trigger": trigger, "steps": [send("hb")]})
    tick(db, workspace_id, at())  # plans the first run: 2 June 10:00 in Shanghai (02:00 UTC)
    tick(db, workspace_id, at(hours=21))
    assert stays(db, journey_id) == []
    tick(db, workspace_id, at(hours=22))  # the 2 June run greets the 3 June birthdays, a day early
    assert [(s.customer_id, s.status, s.trigger_ref) for s in stays(db, journey_id)] == [
        (born, "completed", "birthday:2026")
    ]
    with db.reader() as session:
        planned = service.get_journey(session, workspace_id=workspace_id, journey_id=journey_id).next_run_at
    assert planned == at(days=1, hours=22)


def test_weekly_schedule_enrols_the_segment(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        buyer = reachable(session, workspace_id=workspace_id)
        reachable(session, workspace_id=workspace_id)
        make_order(session, workspace_id=workspace_id, customer_id=buyer)
        segment = segments.create_segment(
            session, actor=owner.actor, name="b", rule="order_count >= 1", accept_warnings=True
        )
    trigger = {"kind": "schedule", "every": "week", "weekday": 3, "at": "11:00", "segment_id": segment.id}
    journey_id = make_journey(
        db, owner.actor, {"trigger": trigger, "reentry": {"mode": "always"}, "steps": [send("menu")]}
    )
    tick(db, workspace_id, at())  # Monday 1 June: the first run is Wednesday 3 June 11:00
    tick(db, workspace_id, at(days=2, hours=-1))
    assert [s.customer_id for s in stays(db, journey_id)] == [buyer]
    tick(db, workspace_id, at(days=9, hours=-1))  # and again a week later
    assert [s.number for s in stays(db, journey_id)] == [1, 2]


def test_coupon_expiring_trigger(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        holder = reachable(session, workspace_id=workspace_id)
        template = coupons.create_template(
            session,
            actor=owner.actor,
            body=TemplateIn(name="7天券", type=CouponType.NO_THRESHOLD, discount_cents=500, valid_days=3),
        )
        coupons.issue(
            session, workspace_id=workspace_id, template_id=template.id, customer_id=holder,
            source_kind="staff", source_ref=None, idempotency_key="k1", at=at(),
        )  # fmt: skip
    trigger = {"kind": "coupon_expiring", "days_before": 2, "template_id": template.id}
    journey_id = make_journey(db, owner.actor, {"trigger": trigger, "steps": [send("use-it")]})
    tick(db, workspace_id, at())  # plans 2 June 10:00; the coupon expires 4 June 12:00
    tick(db, workspace_id, at(hours=22))
    assert [s.customer_id for s in stays(db, journey_id)] == [holder]


def test_a_refused_step_exits_the_stay_with_nothing_half_written(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    journey_id = make_journey(
        db,
        owner.actor,
        {"trigger": event_trigger(), "steps": [{"id": "t", "kind": "tag", "tag_id": 999999}, send("after")]},
    )
    emit(db, workspace_id, "order.placed", customer)
    tick(db, workspace_id, at())
    (stay,) = stays(db, journey_id)
    assert (stay.status, stay.exit_reason) == ("exited", "step_refused")
    assert [r[1] for r in runs(db, journey_id)] == ["t"]
    assert _messages(db, journey_id) == []


@pytest.mark.parametrize("choice", ["stay", "move", "exit"])
def test_editing_a_live_journey_and_customers_in_flight(db: Database, workspace_id: int, choice: str) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        first, second = (reachable(session, workspace_id=workspace_id) for _ in range(2))
    old = {"trigger": event_trigger(), "steps": [{"id": "w", "kind": "wait", "days": 1}, send("old")]}
    journey_id = make_journey(db, owner.actor, old)
    emit(db, workspace_id, "order.placed", first)
    tick(db, workspace_id, at())
    new = {"trigger": event_trigger(), "steps": [{"id": "w", "kind": "wait", "days": 1}, send("new")]}
    with db.transaction() as session:
        change = service.update_definition(
            session, actor=owner.actor, journey_id=journey_id, definition=new, in_flight=choice
        )
    assert change.version == 2
    emit(db, workspace_id, "order.placed", second)
    tick(db, workspace_id, at(days=2))
    by_customer = {s.customer_id: s for s in stays(db, journey_id)}
    sent = {(m.customer_id, m.step.split(":")[0]) for m in _messages(db, journey_id)}
    assert by_customer[second].version == 2
    assert (second, "new") not in sent  # the newcomer waits its day on version 2
    expected = {
        "stay": ("old", "completed", 1),
        "move": ("new", "completed", 2),
        "exit": (None, "exited", 1),
    }[choice]
    step, status, version = expected
    assert by_customer[first].status == status and by_customer[first].version == version
    assert ((first, step) in sent) if step else not any(c == first for c, _ in sent)


def test_moving_to_a_version_without_the_step_exits(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    journey_id = make_journey(
        db,
        owner.actor,
        {"trigger": event_trigger(), "steps": [{"id": "w", "kind": "wait", "days": 1}, send("a")]},
    )
    emit(db, workspace_id, "order.placed", customer)
    tick(db, workspace_id, at())
    with db.transaction() as session:
        change = service.update_definition(
            session,
            actor=owner.actor,
            journey_id=journey_id,
            definition={"trigger": event_trigger(), "steps": [send("b")]},
            in_flight="move",
        )
    assert (change.moved, change.exited, change.exited_steps) == (0, 1, {"w": 1})


def test_definitions_are_refused_with_where_and_how(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    cases = [
        ({"steps": []}, "trigger"),
        ({"trigger": event_trigger("nope"), "steps": [send("a")]}, "trigger.type"),
        ({"trigger": event_trigger(), "steps": [send("a"), send("a")]}, "steps[1].id"),
        ({"trigger": event_trigger(), "steps": [send("a", next="zz")]}, "steps[0] (a).next"),
        ({"trigger": event_trigger(), "steps": [{"id": "w", "kind": "wait"}]}, "steps[0] (w)"),
        ({"trigger": event_trigger(), "steps": [send("a", next="b"), send("b", next="a")]}, "steps (a)"),
        (
            {"trigger": event_trigger(), "reentry": {"mode": "after_days"}, "steps": [send("a")]},
            "reentry.days",
        ),
    ]
    for document, where in cases:
        with pytest.raises(ValidationFailed) as caught, db.transaction() as session:
            service.create_journey(session, actor=owner.actor, name="bad", definition=document)
        assert caught.value.where == where, (document, caught.value)
    with db.reader() as session:
        assert service.list_journeys(session, workspace_id=workspace_id) == []


def test_templates_are_valid_definitions(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    for template in service.TEMPLATES:
        with db.transaction() as session:
            journey = service.create_journey(
                session,
                actor=owner.actor,
                name=template.name_zh,
                definition=service.template_definition(template.key, coupon_template_id=1),
                template_key=template.key,
            )
        assert journey.trigger_kind in ("event", "date")


def test_welcome_template_runs_day_0_1_3_7(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
        journey = service.create_journey(
            session, actor=owner.actor, name="welcome", definition=service.template_definition("welcome")
        )
        service.set_status(session, actor=owner.actor, journey_id=journey.id, action="start")
    emit(db, workspace_id, "wecom.friend_added", customer)
    for day in (0, 1, 3, 7):
        tick(db, workspace_id, at(days=day))
    sent = [(m.step.split(":")[0], m.planned_at - at()) for m in _messages(db, journey.id)]
    assert [s for s, _ in sent] == ["day0", "day1", "day3", "day7"]
    assert [d for _, d in sent] == [timedelta(days=d) for d in (0, 1, 3, 7)]
    with db.reader() as session:
        assert (
            session.scalar(select(StaffTask.title).where(StaffTask.journey_id == journey.id))
            == "新客第 7 天 1v1 回访"
        )


def test_event_filters_live_code_and_lifecycle_stage_and_segment_left(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        a, b, c, d = (reachable(session, workspace_id=workspace_id) for _ in range(4))
    by_code = make_journey(
        db, owner.actor, {"trigger": event_trigger("livecode.added", live_code_id=7), "steps": [send("x")]}
    )
    dormant = make_journey(
        db,
        owner.actor,
        {"trigger": event_trigger("lifecycle.changed", stage="dormant"), "steps": [send("y")]},
    )
    left = make_journey(
        db, owner.actor, {"trigger": {"kind": "segment_left", "segment_id": 3}, "steps": [send("z")]}
    )
    emit(db, workspace_id, "livecode.added", a, live_code_id=7)
    emit(db, workspace_id, "livecode.added", b, live_code_id=8)
    emit(db, workspace_id, "lifecycle.changed", c, **{"from": "active", "to": "dormant"})
    emit(db, workspace_id, "lifecycle.changed", d, **{"from": "new", "to": "active"})
    emit(db, workspace_id, "segment.left", d, segment_id=3)
    emit(db, workspace_id, "segment.entered", c, segment_id=3)
    tick(db, workspace_id, at())
    assert [s.customer_id for s in stays(db, by_code)] == [a]
    assert [s.customer_id for s in stays(db, dormant)] == [c]
    assert [s.customer_id for s in stays(db, left)] == [d]


def test_dormant_template_waits_for_an_order_then_assigns_a_task(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id, owner_user_id=owner.user_id).id
        journey = service.create_journey(
            session, actor=owner.actor, name="唤醒", definition=service.template_definition("dormant")
        )
        service.set_status(session, actor=owner.actor, journey_id=journey.id, action="start")
    emit(db, workspace_id, "lifecycle.changed", customer, to="dormant")
    tick(db, workspace_id, at())
    tick(db, workspace_id, at(days=7))
    assert [r[1] for r in runs(db, journey.id)] == ["winback", "watch", "call", "done"]
    with db.reader() as session:
        task = session.scalar(select(StaffTask).where(StaffTask.journey_id == journey.id))
        assert task is not None and task.assignee_user_id == owner.user_id


def test_send_steps_are_personalised_and_a_broken_template_is_refused_on_save(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
        session.get(Customer, customer).name = "王小美"  # type: ignore[union-attr]
    journey_id = make_journey(
        db,
        owner.actor,
        {"trigger": event_trigger(), "steps": [send("hi", text="{{ name }}，感谢下单")]},
    )
    emit(db, workspace_id, "order.placed", customer)
    tick(db, workspace_id, at())
    [message] = _messages(db, journey_id)
    assert message.content["text"] == "王小美，感谢下单 hi"
    with pytest.raises(ValidationFailed) as refused:
        make_journey(db, owner.actor, {"trigger": event_trigger(), "steps": [send("bad", text="{{ name")]})
    assert refused.value.where and refused.value.where.startswith("steps (bad).content.sms")


def test_a_batch_writes_its_stays_and_its_log_with_one_statement_each(
    db: Database, workspace_id: int
) -> None:
    """Stays that wait, finish, change their context or not, in one batch: one UPDATE of the stays and
    one INSERT of the log however they differ; a context the batch did not touch is kept."""
    owner = member(db, workspace_id)
    with db.transaction() as session:
        gold = [reachable(session, workspace_id=workspace_id, attributes={"level": "gold"}) for _ in range(8)]
        silver = [
            reachable(session, workspace_id=workspace_id, attributes={"level": "silver"}) for _ in range(4)
        ]
        experiment = experiments.create_experiment(
            session, actor=owner.actor, key="batch-ab", name="AB", variants={"a": 1, "b": 1}
        )
        experiments.start_experiment(session, actor=owner.actor, experiment_id=experiment.id)
    steps = [
        {"id": "gold", "kind": "condition", "rule": 'attr.level = "gold"', "then": "ab", "else": "w"},
        {"id": "ab", "kind": "split", "experiment_id": experiment.id, "branches": {"a": "w", "b": "end"}},
        {"id": "w", "kind": "wait", "hours": 1},
        {"id": "end", "kind": "exit"},
    ]
    journey_id = make_journey(db, owner.actor, {"trigger": event_trigger(), "steps": steps})
    for customer in gold + silver:
        emit(db, workspace_id, "order.placed", customer)
    with db.transaction() as session:
        assert service.consume_events(session, workspace_id=workspace_id, now=at()).enrolled == 12

    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.transaction() as session:
            ran = service.process_due(session, workspace_id=workspace_id, now=at(), limit=50)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert ran.claimed == 12
    assert sum(s.startswith("UPDATE journey_enrolment") for s in statements) == 1
    assert sum(s.startswith("INSERT INTO journey_step_run") for s in statements) == 1

    def by_customer() -> dict[int, tuple[str, str | None, bool, dict[str, str]]]:
        return {s.customer_id: (s.status, s.step_id, s.waiting, s.context) for s in stays(db, journey_id)}

    first = by_customer()
    for customer in silver:
        assert first[customer] == ("active", "w", True, {})
    for customer in gold:
        status, step_id, waiting, context = first[customer]
        assert context["variant:ab"] in ("a", "b")
        expected = ("active", "w", True) if context["variant:ab"] == "a" else ("completed", "end", False)
        assert (status, step_id, waiting) == expected
    tick(db, workspace_id, at(hours=1))
    for customer, (_, _, _, context) in by_customer().items():
        assert by_customer()[customer][0] == "completed"
        assert context == first[customer][3]  # kept through the timer's batch, which did not change it
    waited = sum(first[c][3]["variant:ab"] == "a" for c in gold)
    logged = runs(db, journey_id)  # gold|w|end for silver, gold|ab|w|end for a, gold|ab|end for b
    assert len(logged) == len({(r[0], r[1]) for r in logged}) == 12 * 3 + waited
