"""The journey engine: enrols customers when a trigger fires and runs their steps until the next wait.

- `consume_events` reads the domain-event outbox after the `journeys` cursor (locked per workspace, so
  two engines never handle an event twice): it enrols customers for event and segment triggers, ends
  the stays of customers who reached a journey's goal, and resumes those waiting for an event.
- `run_schedules` enrols for date (birthday), coupon-expiring and recurring schedule triggers when their
  time comes (the journey row is locked, skipped if another engine holds it).
- `process_due` claims due enrolments (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer)
  as plain rows and runs their steps in the caller's transaction; the batch's stays are written back
  with one statement and its execution log with another. Every executed step is a row of the log,
  unique per (enrolment, step, version): a step that ran already cannot run again — a second attempt
  fails the transaction instead, so nothing of it is written.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.core import domain_events
from siyu.core.db import integer_array, is_postgres, text_array
from siyu.core.errors import SiyuError
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.customers import service as customers
from siyu.experiments import service as experiments
from siyu.journeys.definition import Definition, parse_time
from siyu.journeys.models import (
    EnrolmentStatus,
    Journey,
    JourneyEnrolment,
    JourneyStatus,
    JourneyStepRun,
    JourneyVersion,
    StaffTask,
)
from siyu.journeys.service.journeys import definition_of, end_enrolments
from siyu.reach import service as reach
from siyu.segments import membership as segment_membership
from siyu.segments import service as segments
from siyu.tags import service as tags
from siyu.tags.models import TagSource
from siyu.workspaces import service as workspaces

CONSUMER = "journeys"
MAX_STEPS_PER_RUN = 200  # a guard; definitions have no cycles, so a stay never runs more steps than this
DEFAULT_CYCLE_DAYS = 30  # the repurchase wait of a customer with one order only
WAIT_KINDS = ("wait", "wait_until", "wait_event")
E = JourneyEnrolment


@dataclass
class EngineRun:
    claimed: int = 0
    steps: int = 0
    enrolled: int = 0
    goals: int = 0
    resumed: int = 0
    completed: int = 0
    exited: int = 0
    events: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


# --- enrolment --------------------------------------------------------------------------------------


def enrol(
    session: Session,
    *,
    journey: Journey,
    definition: Definition,
    customer_id: int,
    now: datetime,
    trigger_ref: str | None = None,
) -> JourneyEnrolment | None:
    """Enrol one customer on the journey's current version unless the re-entry rule refuses (never /
    after N days / always; a customer is never in the same journey twice at once). The first step is
    due now. Returns None when refused."""
    previous = session.execute(
        select(
            func.max(E.number),
            func.max(E.entered_at),
            func.count().filter(E.status == EnrolmentStatus.ACTIVE),
        ).where(E.journey_id == journey.id, E.customer_id == customer_id)
    ).one()
    number, last_entered, active = previous
    if number:
        if active:
            return None
        rule = definition.reentry
        if rule["mode"] == "never":
            return None
        if (
            rule["mode"] == "after_days"
            and last_entered is not None
            and now - last_entered < timedelta(days=rule["days"])
        ):
            return None
    enrolment = JourneyEnrolment(
        workspace_id=journey.workspace_id,
        journey_id=journey.id,
        customer_id=customer_id,
        number=int(number or 0) + 1,
        version=journey.version,
        status=EnrolmentStatus.ACTIVE,
        step_id=definition.first_step,
        due_at=now,
        waiting=False,
        context={},
        trigger_ref=trigger_ref,
        entered_at=now,
    )
    session.add(enrolment)
    return enrolment


def _live_journeys(session: Session, *, workspace_id: int) -> list[Journey]:
    return list(
        session.scalars(
            select(Journey)
            .where(Journey.workspace_id == workspace_id, Journey.status == JourneyStatus.LIVE)
            .order_by(Journey.id)
        )
    )


def _trigger_matches(trigger: dict[str, Any], event_type: str, payload: dict[str, Any]) -> bool:
    kind = trigger["kind"]
    if kind == "segment_entered":
        return event_type == "segment.entered" and payload.get("segment_id") == trigger["segment_id"]
    if kind == "segment_left":
        return event_type == "segment.left" and payload.get("segment_id") == trigger["segment_id"]
    if kind != "event" or event_type != trigger["type"]:
        return False
    if "live_code_id" in trigger and payload.get("live_code_id") != trigger["live_code_id"]:
        return False
    return not ("stage" in trigger and payload.get("to") != trigger["stage"])


def _followed_types(session: Session, *, workspace_id: int) -> dict[str, set[tuple[int, int]]]:
    """Event type → the (journey, version) pairs of journeys not archived whose goal or wait-for-event
    step names it: only events of these types need a look at the enrolments."""
    found: dict[str, set[tuple[int, int]]] = {}
    rows = session.execute(
        select(JourneyVersion.journey_id, JourneyVersion.version)
        .join(Journey, Journey.id == JourneyVersion.journey_id)
        .where(Journey.workspace_id == workspace_id, Journey.status != JourneyStatus.ARCHIVED)
    ).all()
    for journey_id, version in rows:
        checked = definition_of(session, journey_id=journey_id, version=version)
        if checked.goal:
            found.setdefault(checked.goal["event"], set()).add((journey_id, version))
        for step in checked.steps.values():
            if step["kind"] == "wait_event":
                found.setdefault(step["event"], set()).add((journey_id, version))
    return found


def consume_events(
    session: Session, *, workspace_id: int, limit: int = 1000, now: datetime | None = None
) -> EngineRun:
    """Handle the workspace's next domain events (at most `limit`) in the caller's transaction: goals,
    resumed waits and new enrolments; the cursor moves past them."""
    now = now or utcnow()
    run = EngineRun()
    start = None
    if domain_events.lock(session, consumer=CONSUMER, workspace_id=workspace_id) == domain_events.START:
        # the first run in a workspace starts at its first journey: the history before it concerns none
        first = session.scalar(
            select(func.min(Journey.created_at)).where(Journey.workspace_id == workspace_id)
        )
        if first is not None:
            start = domain_events.position_before(session, workspace_id=workspace_id, created_before=first)
    batch = domain_events.read_after(
        session, consumer=CONSUMER, workspace_id=workspace_id, limit=limit, start=start
    )
    events = [(e.id, e.type, e.customer_id, e.payload, e.created_at) for e in batch.events]
    if not events:
        return run
    live = [
        (j, definition_of(session, journey_id=j.id, version=j.version))
        for j in _live_journeys(session, workspace_id=workspace_id)
    ]
    event_triggered = [
        (j, d) for j, d in live if d.trigger["kind"] in ("event", "segment_entered", "segment_left")
    ]
    followed = _followed_types(session, workspace_id=workspace_id)
    for event_id, type_, customer_id, payload, created_at in events:
        run.events += 1
        if customer_id is None:
            continue
        if type_ in followed:
            _follow(
                session,
                customer_id=customer_id,
                type_=type_,
                pairs=followed[type_],
                seen_at=created_at,
                now=now,
                run=run,
            )
        for journey, checked in event_triggered:
            live_since = journey.live_since or journey.created_at
            if (
                created_at >= live_since
                and _trigger_matches(checked.trigger, type_, payload or {})
                and enrol(
                    session,
                    journey=journey,
                    definition=checked,
                    customer_id=customer_id,
                    now=now,
                    trigger_ref=f"event:{event_id}",
                )
            ):
                run.enrolled += 1
        session.flush()
    domain_events.advance(session, consumer=CONSUMER, workspace_id=workspace_id, position=batch.position)
    return run


def _follow(
    session: Session,
    *,
    customer_id: int,
    type_: str,
    pairs: set[tuple[int, int]],
    seen_at: datetime,
    now: datetime,
    run: EngineRun,
) -> None:
    journey_ids = sorted({j for j, _ in pairs})
    stays = list(
        session.scalars(
            select(E)
            .where(
                E.journey_id.in_(journey_ids),
                E.customer_id == customer_id,
                E.status == EnrolmentStatus.ACTIVE,
            )
            .with_for_update()
        )
    )
    for stay in stays:
        if (stay.journey_id, stay.version) not in pairs or stay.entered_at > seen_at:
            continue  # an event before the stay began is not its goal
        checked = definition_of(session, journey_id=stay.journey_id, version=stay.version)
        if checked.goal and checked.goal["event"] == type_:
            _finish(stay, EnrolmentStatus.GOAL, "goal", now)
            run.goals += 1
        elif stay.waiting_event == type_ and stay.waiting_since is not None and seen_at >= stay.waiting_since:
            stay.step_id = stay.event_step_id
            stay.waiting = False
            stay.waiting_event = None
            stay.event_step_id = None
            stay.resume_step_id = None
            stay.due_at = now
            run.resumed += 1
            if stay.step_id is None:
                _finish(stay, EnrolmentStatus.COMPLETED, "end", now)


def _finish(stay: JourneyEnrolment | _Stay, status: str, reason: str, now: datetime) -> None:
    stay.status = status
    stay.exit_reason = reason
    stay.ended_at = now
    stay.due_at = None
    stay.waiting = False
    stay.waiting_event = None


# --- schedules --------------------------------------------------------------------------------------


def _at_local(day: date, at: str, zone: ZoneInfo) -> datetime:
    moment = parse_time(at, where="at")
    return datetime(day.year, day.month, day.day, moment.hour, moment.minute, tzinfo=zone)


def next_run(trigger: dict[str, Any], *, after: datetime, zone: ZoneInfo) -> datetime:
    """The first time after `after` when a date, coupon or schedule trigger looks for customers."""
    at = trigger.get("at", "10:00")
    day = after.astimezone(zone).date()
    for offset in range(0, 9):
        candidate = _at_local(day + timedelta(days=offset), at, zone)
        if candidate <= after:
            continue
        if (
            trigger["kind"] == "schedule"
            and trigger["every"] == "week"
            and candidate.isoweekday() != trigger["weekday"]
        ):
            continue
        return candidate.astimezone(after.tzinfo)
    raise AssertionError("a weekly trigger falls within 8 days")


def _birthday_on(day: date) -> set[tuple[int, int]]:
    """The (month, day) birthdays celebrated on `day`: 29 February is kept on 28 February of other years."""
    found = {(day.month, day.day)}
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        found.add((2, 29))
    return found


def _audience(
    session: Session, *, journey: Journey, trigger: dict[str, Any], run_at: datetime, zone: ZoneInfo
) -> list[tuple[int, str]]:
    local_day = run_at.astimezone(zone).date()
    kind = trigger["kind"]
    if kind == "schedule":
        segment = segments.get_segment(
            session, workspace_id=journey.workspace_id, segment_id=trigger["segment_id"]
        )
        return [
            (c, f"schedule:{local_day}")
            for c in sorted(segment_membership.current_members(session, segment=segment))
        ]
    if kind == "date":
        target = local_day + timedelta(days=int(trigger.get("days_before", 0)))
        wanted = _birthday_on(target)
        birthday = customers.RULE_COLUMNS.profile["birthday"]
        rows = session.execute(
            customers.live_customer_ids(journey.workspace_id)
            .add_columns(birthday)
            .where(birthday.is_not(None))
        ).all()
        return [(int(c), f"birthday:{target.year}") for c, b in rows if (b.month, b.day) in wanted]
    days = int(trigger.get("days_before", 3))
    start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=zone) + timedelta(days=days)
    found = coupons.expiring(
        session,
        workspace_id=journey.workspace_id,
        start=start,
        end=start + timedelta(days=1),
        template_id=trigger.get("template_id"),
    )
    return [(c, f"coupon:{coupon_id}") for c, coupon_id, _ in found]


def run_schedules(session: Session, *, workspace_id: int, now: datetime | None = None) -> EngineRun:
    """Enrol the customers of every date, coupon-expiring and schedule trigger whose time has come, and
    plan each one's next run. A journey another engine is scheduling is skipped (its row is locked)."""
    now = now or utcnow()
    run = EngineRun()
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=workspace_id).timezone or "Asia/Shanghai")
    query = (
        select(Journey)
        .where(
            Journey.workspace_id == workspace_id,
            Journey.status == JourneyStatus.LIVE,
            Journey.trigger_kind.in_(["date", "schedule", "coupon_expiring"]),
        )
        .order_by(Journey.id)
    )
    query = query.with_for_update(skip_locked=True) if is_postgres(session) else query
    for journey in session.scalars(query):
        checked = definition_of(session, journey_id=journey.id, version=journey.version)
        if journey.next_run_at is None:  # just started or edited: the first run is the next one
            journey.next_run_at = next_run(checked.trigger, after=now, zone=zone)
        if journey.next_run_at > now:
            continue
        for customer_id, ref in _audience(
            session, journey=journey, trigger=checked.trigger, run_at=journey.next_run_at, zone=zone
        ):
            if enrol(
                session,
                journey=journey,
                definition=checked,
                customer_id=customer_id,
                now=now,
                trigger_ref=ref,
            ):
                run.enrolled += 1
        journey.next_run_at = next_run(checked.trigger, after=max(now, journey.next_run_at), zone=zone)
        session.flush()
    return run


# --- running steps ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Stay:
    """A claimed enrolment as a plain row: the engine changes it in memory and `_write_stays` writes the
    batch back in one statement (no ORM objects to load, track and flush)."""

    id: int
    workspace_id: int
    journey_id: int
    customer_id: int
    version: int
    step_id: str | None
    due_at: datetime | None
    waiting: bool
    resume_step_id: str | None
    waiting_event: str | None
    waiting_since: datetime | None
    event_step_id: str | None
    context: dict[str, Any]
    status: str = EnrolmentStatus.ACTIVE
    ended_at: datetime | None = None
    exit_reason: str | None = None
    context_changed: bool = False


# what a claim reads, in `_Stay`'s order
_CLAIMED = (
    E.id,
    E.workspace_id,
    E.journey_id,
    E.customer_id,
    E.version,
    E.step_id,
    E.due_at,
    E.waiting,
    E.resume_step_id,
    E.waiting_event,
    E.waiting_since,
    E.event_step_id,
    E.context,
)


@dataclass
class _Context:
    session: Session
    now: datetime
    zones: dict[int, ZoneInfo] = field(default_factory=dict)
    journeys: dict[int, Journey] = field(default_factory=dict)
    actors: dict[int, Actor] = field(default_factory=dict)
    definitions: dict[tuple[int, int], Definition] = field(default_factory=dict)
    log: list[tuple[int, _LogKind]] = field(default_factory=list)  # (enrolment, what ran) in order

    def zone(self, workspace_id: int) -> ZoneInfo:
        if workspace_id not in self.zones:
            name = workspaces.get_workspace(self.session, workspace_id=workspace_id).timezone
            self.zones[workspace_id] = ZoneInfo(name or "Asia/Shanghai")
        return self.zones[workspace_id]

    def definition(self, journey_id: int, version: int) -> Definition:
        key = (journey_id, version)
        if key not in self.definitions:
            self.definitions[key] = definition_of(self.session, journey_id=journey_id, version=version)
        return self.definitions[key]

    def journey(self, journey_id: int) -> Journey:
        if journey_id not in self.journeys:
            found = self.session.get(Journey, journey_id)
            assert found is not None
            self.journeys[journey_id] = found
        return self.journeys[journey_id]

    def actor(self, journey: Journey) -> Actor:
        """Who a journey's writes (tags) act as: its creator with an operator's rights, or the owner."""
        if journey.id not in self.actors:
            user_id = journey.created_by_user_id
            if user_id is None:
                user_id = auth.command_line_actor(self.session, workspace_id=journey.workspace_id).user_id
            self.actors[journey.id] = Actor(
                user_id, journey.workspace_id, Role.OPERATOR, "journey", via="journey"
            )
        return self.actors[journey.id]


class _Refused(Exception):
    """A step another domain refused: the stay exits with the reason."""


def _customer_facts(session: Session, *, workspace_id: int, customer_id: int) -> Any:
    cols = customers.RULE_COLUMNS
    return session.execute(
        customers.live_customer_ids(workspace_id)
        .add_columns(
            cols.profile["owner_user_id"],
            cols.rollup["order_count"],
            cols.rollup["first_order_at"],
            cols.rollup["last_order_at"],
        )
        .where(cols.customer_id == customer_id)
    ).first()


def repurchase_due(facts: Any, *, now: datetime, days_before: float, fallback_days: float) -> datetime:
    """When to remind a customer to buy again: their own average interval between orders after the last
    order (the fallback for a customer with one order), less `days_before`; never before now."""
    if facts is None or not facts.last_order_at:
        return now + timedelta(days=fallback_days)
    count = int(facts.order_count or 0)
    if count >= 2 and facts.first_order_at is not None:
        cycle = (facts.last_order_at - facts.first_order_at) / (count - 1)
    else:
        cycle = timedelta(days=fallback_days)
    return max(now, facts.last_order_at + cycle - timedelta(days=days_before))


def wait_until(at: str, weekdays: Iterable[int] | None, *, now: datetime, zone: ZoneInfo) -> datetime:
    """The next time of day `at` (on one of `weekdays`, 1 = Monday) in `zone`, at or after now."""
    allowed = set(weekdays or range(1, 8))
    day = now.astimezone(zone).date()
    for offset in range(0, 8):
        candidate = _at_local(day + timedelta(days=offset), at, zone)
        if candidate >= now and candidate.isoweekday() in allowed:
            return candidate.astimezone(now.tzinfo)
    raise AssertionError("some weekday falls within a week")


def _execute(ctx: _Context, stay: _Stay, checked: Definition, step_id: str) -> tuple[str | None, str]:
    """Run one step; returns (where the stay goes next, the outcome for the log). Waits set the timer."""
    step = checked.steps[step_id]
    kind = step["kind"]
    session, now = ctx.session, ctx.now
    journey = ctx.journey(stay.journey_id)
    if kind == "send":
        summary = reach.send(
            session,
            workspace_id=stay.workspace_id,
            source=reach.Source.JOURNEY,
            source_ref=str(stay.journey_id),
            customer_ids=[stay.customer_id],
            content=step["content"],
            purpose=step.get("purpose", "marketing"),
            channel_preference=step["channels"],
            step=f"{step_id}:{stay.id}",
            personalise=True,
            now=now,
        )
        status = next(iter(summary.by_status), "existing")
        reason = next(iter(summary.by_reason), "")
        return checked.next_of(step_id), f"{status} {reason}".strip()
    if kind in WAIT_KINDS:
        stay.waiting = True
        if kind == "wait":
            if step.get("days_from") == "repurchase_cycle":
                facts = _customer_facts(session, workspace_id=stay.workspace_id, customer_id=stay.customer_id)
                due = repurchase_due(
                    facts,
                    now=now,
                    days_before=float(step.get("days_before", 0)),
                    fallback_days=float(step.get("days", DEFAULT_CYCLE_DAYS)),
                )
            else:
                due = now + timedelta(
                    days=float(step.get("days", 0)),
                    hours=float(step.get("hours", 0)),
                    minutes=float(step.get("minutes", 0)),
                )
        elif kind == "wait_until":
            due = wait_until(step["time"], step.get("weekdays"), now=now, zone=ctx.zone(stay.workspace_id))
        else:
            due = now + timedelta(hours=float(step["timeout_hours"]))
            stay.waiting_event = step["event"]
            stay.waiting_since = now
            stay.event_step_id = checked.next_of(step_id)
        stay.due_at = due
        stay.resume_step_id = step.get("timeout_next") if kind == "wait_event" else checked.next_of(step_id)
        return step_id, f"until {due.isoformat()}"
    if kind == "condition":
        matched = segments.rule_matches(
            session,
            workspace_id=stay.workspace_id,
            rule=step["rule"],
            customer_ids=[stay.customer_id],
            now=now,
        )
        yes = stay.customer_id in matched
        return (step.get("then") if yes else step.get("else")), "then" if yes else "else"
    if kind == "split":
        variant = experiments.assign(
            session,
            workspace_id=stay.workspace_id,
            experiment_id=step["experiment_id"],
            customer_id=stay.customer_id,
            at=now,
        )
        stay.context = {**(stay.context or {}), f"variant:{step_id}": variant}
        stay.context_changed = True
        target = step["branches"].get(variant) if variant is not None else step.get("holdout")
        return target, f"variant {variant or 'holdout'}"
    if kind == "tag":
        actor = ctx.actor(journey)
        if step.get("action", "add") == "add":
            tags.tag_customers(
                session,
                actor=actor,
                tag_id=step["tag_id"],
                customer_ids=[stay.customer_id],
                source=TagSource.JOURNEY,
                source_ref=f"journey:{journey.id}",
            )
            return checked.next_of(step_id), "tagged"
        tags.untag_customers(session, actor=actor, tag_id=step["tag_id"], customer_ids=[stay.customer_id])
        return checked.next_of(step_id), "untagged"
    if kind == "task":
        facts = _customer_facts(session, workspace_id=stay.workspace_id, customer_id=stay.customer_id)
        if facts is None:
            raise _Refused("customer_gone")
        session.add(
            StaffTask(
                workspace_id=stay.workspace_id,
                customer_id=stay.customer_id,
                assignee_user_id=facts.owner_user_id,
                journey_id=stay.journey_id,
                enrolment_id=stay.id,
                step_id=step_id,
                version=stay.version,
                title=step["title"],
                note=step.get("note", ""),
                status="open",
                due_at=now + timedelta(hours=float(step.get("due_hours", 24))),
                created_at=now,
            )
        )
        return checked.next_of(step_id), f"task for {facts.owner_user_id or 'nobody'}"
    if kind == "coupon":
        try:
            coupon = coupons.issue(
                session,
                workspace_id=stay.workspace_id,
                template_id=step["template_id"],
                customer_id=stay.customer_id,
                source_kind="journey",
                source_ref=f"journey:{stay.journey_id}:{step_id}",
                idempotency_key=f"journey:{stay.id}:{step_id}",
                at=now,
            )
        except SiyuError as exc:  # a cap reached: the journey goes on without the coupon
            return checked.next_of(step_id), f"refused: {exc.message}"[:200]
        return checked.next_of(step_id), f"coupon {coupon.id}"
    return None, "exit"


def _run_stay(ctx: _Context, stay: _Stay, run: EngineRun) -> None:
    checked = ctx.definition(stay.journey_id, stay.version)
    if stay.waiting:  # a timer ran out: a wait ends, a wait for an event times out
        stay.waiting = False
        stay.waiting_event = None
        stay.event_step_id = None
        stay.step_id = stay.resume_step_id
        stay.resume_step_id = None
    for _ in range(MAX_STEPS_PER_RUN):
        step_id = stay.step_id
        if step_id is None:
            _finish(stay, EnrolmentStatus.COMPLETED, "end", ctx.now)
            run.completed += 1
            return
        if step_id not in checked.steps:
            _finish(stay, EnrolmentStatus.EXITED, "step_removed", ctx.now)
            run.exited += 1
            return
        kind = checked.steps[step_id]["kind"]
        try:
            if kind in ("send", "tag", "split", "condition", "coupon", "task"):
                with ctx.session.begin_nested():
                    target, outcome = _execute(ctx, stay, checked, step_id)
            else:
                target, outcome = _execute(ctx, stay, checked, step_id)
        except (SiyuError, _Refused) as exc:
            reason = exc.args[0] if isinstance(exc, _Refused) else "step_refused"
            ctx.log.append(_log_row(stay, step_id, f"refused: {exc}"))
            _finish(stay, EnrolmentStatus.EXITED, reason, ctx.now)
            run.exited += 1
            return
        ctx.log.append(_log_row(stay, step_id, outcome))
        run.steps += 1
        run.by_kind[kind] = run.by_kind.get(kind, 0) + 1
        if kind in WAIT_KINDS:
            return
        if kind == "exit":
            _finish(stay, EnrolmentStatus.COMPLETED, "exit", ctx.now)
            run.completed += 1
            return
        stay.step_id = target
    raise AssertionError(f"enrolment {stay.id} ran {MAX_STEPS_PER_RUN} steps at once")


# a log row but its enrolment: (workspace, journey, step, version, outcome); a batch has few distinct ones
_LogKind = tuple[int, int, str, int, str]


def _log_row(stay: _Stay, step_id: str, outcome: str) -> tuple[int, _LogKind]:
    return stay.id, (stay.workspace_id, stay.journey_id, step_id, stay.version, outcome[:200])


_STAY_COLUMNS = (
    "status",
    "step_id",
    "due_at",
    "waiting",
    "resume_step_id",
    "waiting_event",
    "waiting_since",
    "event_step_id",
    "context",
    "ended_at",
    "exit_reason",
)
_STAY_TYPES = (
    "VARCHAR",
    "VARCHAR",
    "TIMESTAMPTZ",
    "BOOLEAN",
    "VARCHAR",
    "VARCHAR",
    "TIMESTAMPTZ",
    "VARCHAR",
    "JSONB",
    "TIMESTAMPTZ",
    "VARCHAR",
)
# One statement for the whole batch, each column one parameter (an array literal). A batch's stays take
# few distinct new states (a wait sets the same timer for all who reach it), so each stay names its slot
# and each slot is written once; a context the batch did not change is kept (NULL).
_WRITE_STAYS = text(
    "UPDATE journey_enrolment AS e SET "
    + ", ".join(
        f"{c} = coalesce(v.context, e.context)" if c == "context" else f"{c} = v.{c}" for c in _STAY_COLUMNS
    )
    + " FROM unnest(CAST(:id AS BIGINT[]), CAST(:slot AS BIGINT[])) AS q(id, slot) JOIN unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(_STAY_COLUMNS, _STAY_TYPES, strict=True))
    + ") WITH ORDINALITY AS v("
    + ", ".join(_STAY_COLUMNS)
    + ", slot) ON v.slot = q.slot WHERE e.id = q.id"
)
# the log rows in the batch's order (n): their ids follow the order the steps ran in
_WRITE_LOG = text(
    "INSERT INTO journey_step_run (workspace_id, journey_id, enrolment_id, step_id, version, outcome,"
    " executed_at) SELECT v.workspace_id, v.journey_id, q.enrolment_id, v.step_id, v.version, v.outcome,"
    " :executed_at FROM unnest(CAST(:enrolment_id AS BIGINT[]), CAST(:slot AS BIGINT[])) WITH ORDINALITY"
    " AS q(enrolment_id, slot, n) JOIN unnest(CAST(:workspace_id AS BIGINT[]), CAST(:journey_id AS BIGINT[]),"
    " CAST(:step_id AS VARCHAR[]), CAST(:version AS BIGINT[]), CAST(:outcome AS VARCHAR[])) WITH ORDINALITY"
    " AS v(workspace_id, journey_id, step_id, version, outcome, slot) ON v.slot = q.slot ORDER BY q.n"
)


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _write_stays(session: Session, stays: Sequence[_Stay]) -> None:
    """Every claimed stay's new state, in one statement (PostgreSQL) or one executemany (SQLite)."""
    if not is_postgres(session):
        columns = E.__table__.c
        statement = (
            update(E)
            .where(E.id == bindparam("stay_id"))
            .values({c: bindparam(f"new_{c}", type_=columns[c].type) for c in _STAY_COLUMNS})
        )
        rows = [{"stay_id": s.id, **{f"new_{c}": getattr(s, c) for c in _STAY_COLUMNS}} for s in stays]
        session.connection().execute(statement, rows)
        return
    slots: dict[tuple[Any, ...], int] = {}
    named = [
        slots.setdefault(
            (
                s.status,
                s.step_id,
                s.due_at,
                s.waiting,
                s.resume_step_id,
                s.waiting_event,
                s.waiting_since,
                s.event_step_id,
                json.dumps(s.context) if s.context_changed else None,
                s.ended_at,
                s.exit_reason,
            ),
            len(slots) + 1,
        )
        for s in stays
    ]
    states = list(zip(*slots, strict=True))  # one tuple per column, in _STAY_COLUMNS' order
    arrays: dict[str, str] = {}
    for name, kind, values in zip(_STAY_COLUMNS, _STAY_TYPES, states, strict=True):
        if kind == "BOOLEAN":
            arrays[name] = "{" + ",".join("t" if v else "f" for v in values) + "}"
        elif kind == "TIMESTAMPTZ":
            arrays[name] = text_array(_moment(v) for v in values)
        else:
            arrays[name] = text_array(values)
    session.execute(
        _WRITE_STAYS, {"id": integer_array(s.id for s in stays), "slot": integer_array(named), **arrays}
    )


def _write_log(session: Session, log: Sequence[tuple[int, _LogKind]], now: datetime) -> None:
    """The batch's execution log in one statement (PostgreSQL) or one executemany (SQLite). A step
    logged already breaks the unique key and fails the transaction: nothing of the batch is written."""
    if not log:
        return
    if not is_postgres(session):
        names = ("workspace_id", "journey_id", "step_id", "version", "outcome")
        rows = [{"enrolment_id": e, "executed_at": now, **dict(zip(names, k, strict=True))} for e, k in log]
        session.execute(insert(JourneyStepRun), rows)
        return
    slots: dict[_LogKind, int] = {}
    named = [slots.setdefault(kind, len(slots) + 1) for _, kind in log]
    workspace_ids, journey_ids, step_ids, versions, outcomes = zip(*slots, strict=True)
    session.execute(
        _WRITE_LOG,
        {
            "executed_at": now,
            "enrolment_id": integer_array(e for e, _ in log),
            "slot": integer_array(named),
            "workspace_id": integer_array(workspace_ids),
            "journey_id": integer_array(journey_ids),
            "step_id": text_array(step_ids),
            "version": integer_array(versions),
            "outcome": text_array(outcomes),
        },
    )


def process_due(
    session: Session, *, workspace_id: int | None = None, now: datetime | None = None, limit: int = 200
) -> EngineRun:
    """Claim up to `limit` due enrolments of live journeys (of one workspace, or all) and run each
    until its next wait or its end, in the caller's transaction."""
    now = now or utcnow()
    run = EngineRun()
    query = (
        select(*_CLAIMED)
        .join(Journey, Journey.id == E.journey_id)
        .where(E.status == EnrolmentStatus.ACTIVE, E.due_at <= now, Journey.status == JourneyStatus.LIVE)
        .order_by(E.due_at, E.id)
        .limit(limit)
    )
    if workspace_id is not None:
        query = query.where(E.workspace_id == workspace_id)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=E)
    stays = [_Stay(*row) for row in session.execute(query)]
    run.claimed = len(stays)
    if not stays:
        return run
    ctx = _Context(session=session, now=now)
    for stay in stays:
        _run_stay(ctx, stay, run)
    _write_stays(session, stays)
    _write_log(session, ctx.log, now)
    session.flush()
    return run


def pending_workspaces(session: Session) -> list[int]:
    """The workspaces with a live journey (where the engine has work to look for)."""
    return list(
        session.scalars(
            select(Journey.workspace_id)
            .where(Journey.status == JourneyStatus.LIVE)
            .distinct()
            .order_by(Journey.workspace_id)
        )
    )


def exit_customers(
    session: Session, *, workspace_id: int, customer_ids: list[int], reason: str, now: datetime | None = None
) -> int:
    """Take customers out of every journey they are in (e.g. erased)."""
    return end_enrolments(
        session,
        where=(
            E.workspace_id == workspace_id,
            E.customer_id.in_(customer_ids),
            E.status == EnrolmentStatus.ACTIVE,
        ),
        reason=reason,
        now=now or utcnow(),
    )
