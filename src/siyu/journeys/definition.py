"""A journey's definition: a JSON document of one trigger, its re-entry rule, an optional goal and the
steps, checked here with errors that name the step and field (`steps[2].next`) and how to fix it.

Steps run in list order unless a step names its `next`; branches name their targets. The steps form
no cycle, so each step runs at most once per enrolment (the execution log's key relies on it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any

from siyu.core.errors import ValidationFailed

TRIGGER_KINDS = ("segment_entered", "segment_left", "event", "coupon_expiring", "date", "schedule")
# events a trigger (or a goal, or a wait) may name; the domain events of siyu that concern one customer
EVENT_TYPES = (
    "wecom.friend_added",
    "livecode.added",
    "order.placed",
    "order.refunded",
    "lifecycle.changed",
    "coupon.issued",
    "coupon.redeemed",
    "tier.changed",
    "tag.added",
    "tag.removed",
    "event.recorded",
    "customer.created",
    "wecom.staff_deleted",
)
STEP_KINDS = (
    "send",
    "wait",
    "wait_until",
    "wait_event",
    "condition",
    "split",
    "tag",
    "task",
    "coupon",
    "exit",
)
REENTRY_MODES = ("never", "after_days", "always")
DATE_ATTRIBUTES = ("birthday",)
SCHEDULE_EVERY = ("day", "week")
_STEP_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_STEPS = 100
MAX_WAIT_DAYS = 3660


@dataclass(frozen=True)
class Definition:
    """A checked definition: the document as stored, and its steps by id."""

    document: dict[str, Any]
    steps: dict[str, dict[str, Any]]
    order: list[str]

    @property
    def trigger(self) -> dict[str, Any]:
        return dict(self.document["trigger"])

    @property
    def reentry(self) -> dict[str, Any]:
        return dict(self.document.get("reentry") or {"mode": "never"})

    @property
    def goal(self) -> dict[str, Any] | None:
        goal = self.document.get("goal")
        return dict(goal) if goal else None

    @property
    def first_step(self) -> str | None:
        return self.order[0] if self.order else None

    def next_of(self, step_id: str) -> str | None:
        """Where a step without branches goes: its `next`, else the following step (None: the end)."""
        step = self.steps[step_id]
        if "next" in step:
            return step["next"]
        position = self.order.index(step_id)
        return self.order[position + 1] if position + 1 < len(self.order) else None

    def targets(self, step_id: str) -> list[str]:
        """Every step this one may lead to."""
        step = self.steps[step_id]
        kind = step["kind"]
        if kind == "exit":
            return []
        if kind == "condition":
            found = [step.get("then"), step.get("else")]
        elif kind == "split":
            found = [*step["branches"].values(), step.get("holdout")]
        elif kind == "wait_event":
            found = [self.next_of(step_id), step.get("timeout_next")]
        else:
            found = [self.next_of(step_id)]
        return [t for t in found if t]


def parse_time(text: Any, *, where: str) -> time:
    if not isinstance(text, str) or not _TIME.match(text):
        raise ValidationFailed(
            f"{text!r} is not a time of day", where=where, hint='24-hour "HH:MM", e.g. "10:00"'
        )
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _fail(message: str, where: str, hint: str | None = None) -> ValidationFailed:
    return ValidationFailed(message, where=where, hint=hint)


def _positive_int(value: Any, *, where: str, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(f"{value!r} is not a whole number of at least {low}", where)
    return value


def _number(value: Any, *, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _fail(f"{value!r} is not a non-negative number", where)
    return float(value)


def _event_type(value: Any, *, where: str) -> str:
    if value not in EVENT_TYPES:
        raise _fail(f"event {value!r} is not one a journey can follow", where, ", ".join(EVENT_TYPES))
    return str(value)


def _check_trigger(trigger: Any) -> None:
    if not isinstance(trigger, dict):
        raise _fail("the trigger is missing", "trigger", '{"kind": "segment_entered", "segment_id": 1}')
    kind = trigger.get("kind")
    if kind not in TRIGGER_KINDS:
        raise _fail(f"trigger kind {kind!r} is not known", "trigger.kind", ", ".join(TRIGGER_KINDS))
    if kind in ("segment_entered", "segment_left"):
        _positive_int(trigger.get("segment_id"), where="trigger.segment_id")
    elif kind == "event":
        _event_type(trigger.get("type"), where="trigger.type")
        if "live_code_id" in trigger:
            if trigger["type"] not in ("wecom.friend_added", "livecode.added"):
                raise _fail(
                    "live_code_id narrows only wecom.friend_added or livecode.added", "trigger.live_code_id"
                )
            _positive_int(trigger["live_code_id"], where="trigger.live_code_id")
        if "stage" in trigger and trigger["type"] != "lifecycle.changed":
            raise _fail("stage narrows only lifecycle.changed", "trigger.stage")
    elif kind == "coupon_expiring":
        _positive_int(trigger.get("days_before", 3), where="trigger.days_before", allow_zero=True)
        if "template_id" in trigger:
            _positive_int(trigger["template_id"], where="trigger.template_id")
    elif kind == "date":
        if trigger.get("attribute") not in DATE_ATTRIBUTES:
            raise _fail(
                f"date attribute {trigger.get('attribute')!r} is not known", "trigger.attribute", "birthday"
            )
        _positive_int(trigger.get("days_before", 0), where="trigger.days_before", allow_zero=True)
        parse_time(trigger.get("at", "10:00"), where="trigger.at")
    elif kind == "schedule":
        if trigger.get("every") not in SCHEDULE_EVERY:
            raise _fail(f"every {trigger.get('every')!r} is not known", "trigger.every", "day or week")
        parse_time(trigger.get("at"), where="trigger.at")
        if trigger["every"] == "week":
            weekday = trigger.get("weekday")
            if isinstance(weekday, bool) or not isinstance(weekday, int) or not 1 <= weekday <= 7:
                raise _fail(f"weekday {weekday!r} is not 1 (Monday) to 7 (Sunday)", "trigger.weekday")
        _positive_int(trigger.get("segment_id"), where="trigger.segment_id")


def _check_reentry(reentry: Any) -> None:
    if reentry is None:
        return
    if not isinstance(reentry, dict) or reentry.get("mode") not in REENTRY_MODES:
        raise _fail("re-entry needs a mode", "reentry.mode", ", ".join(REENTRY_MODES))
    if reentry["mode"] == "after_days":
        _positive_int(reentry.get("days"), where="reentry.days")


def _check_step(step: dict[str, Any], where: str) -> None:
    kind = step["kind"]
    if kind == "send":
        channels = step.get("channels")
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            raise _fail(
                "a send step needs its channels in order of preference",
                f"{where}.channels",
                '["wecom", "sms"]',
            )
        if not isinstance(step.get("content"), dict) or not step["content"]:
            raise _fail("a send step needs content per channel", f"{where}.content", '{"sms": {"text": "…"}}')
        if step.get("purpose", "marketing") not in ("marketing", "transactional"):
            raise _fail(
                f"purpose {step.get('purpose')!r} is not known",
                f"{where}.purpose",
                "marketing or transactional",
            )
    elif kind == "wait":
        total = sum(
            _number(step.get(unit, 0), where=f"{where}.{unit}") for unit in ("days", "hours", "minutes")
        )
        if total <= 0 and not step.get("days_from"):
            raise _fail(
                "a wait needs a duration",
                where,
                '{"days": 1} or {"hours": 2}, or "days_from": "repurchase_cycle"',
            )
        if step.get("days_from") not in (None, "repurchase_cycle"):
            raise _fail(
                f"days_from {step['days_from']!r} is not known", f"{where}.days_from", "repurchase_cycle"
            )
        if step.get("days", 0) > MAX_WAIT_DAYS:
            raise _fail(f"a wait of more than {MAX_WAIT_DAYS} days", f"{where}.days")
    elif kind == "wait_until":
        parse_time(step.get("time"), where=f"{where}.time")
        weekdays = step.get("weekdays")
        if weekdays is not None and (
            not isinstance(weekdays, list)
            or not weekdays
            or not all(isinstance(d, int) and 1 <= d <= 7 for d in weekdays)
        ):
            raise _fail(
                "weekdays are numbers 1 (Monday) to 7 (Sunday)", f"{where}.weekdays", "[1, 2, 3, 4, 5]"
            )
    elif kind == "wait_event":
        _event_type(step.get("event"), where=f"{where}.event")
        if _number(step.get("timeout_hours"), where=f"{where}.timeout_hours") <= 0:
            raise _fail("a wait for an event needs a timeout", f"{where}.timeout_hours", "e.g. 72")
    elif kind == "condition":
        rule = step.get("rule")
        if not isinstance(rule, (str, dict)) or not rule:
            raise _fail("a condition needs a segment rule", f"{where}.rule", 'e.g. "order_count >= 2"')
        from siyu.segments import service as segments  # the rule language is the segments' own

        try:
            segments.read_rule(rule)
        except ValidationFailed as exc:
            raise _fail(f"the condition's rule: {exc.message}", f"{where}.rule", exc.hint) from None
        if not step.get("then") and not step.get("else"):
            raise _fail("a condition needs a then or an else", where)
    elif kind == "split":
        _positive_int(step.get("experiment_id"), where=f"{where}.experiment_id")
        branches = step.get("branches")
        if not isinstance(branches, dict) or not branches:
            raise _fail(
                "a split needs a step per variant", f"{where}.branches", '{"A": "send_a", "B": "send_b"}'
            )
    elif kind == "tag":
        _positive_int(step.get("tag_id"), where=f"{where}.tag_id")
        if step.get("action", "add") not in ("add", "remove"):
            raise _fail(f"action {step.get('action')!r} is not known", f"{where}.action", "add or remove")
    elif kind == "task":
        title = step.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 200:
            raise _fail("a task needs a title of 1 to 200 characters", f"{where}.title")
        _number(step.get("due_hours", 24), where=f"{where}.due_hours")
    elif kind == "coupon":
        _positive_int(step.get("template_id"), where=f"{where}.template_id")


def validate(document: Any) -> Definition:
    """Check a definition; the first problem found raises ValidationFailed naming where it is."""
    if not isinstance(document, dict):
        raise _fail("a definition is a JSON object", "definition", '{"trigger": {…}, "steps": […]}')
    _check_trigger(document.get("trigger"))
    _check_reentry(document.get("reentry"))
    goal = document.get("goal")
    if goal is not None:
        if not isinstance(goal, dict):
            raise _fail("the goal is an object", "goal", '{"event": "order.placed"}')
        _event_type(goal.get("event"), where="goal.event")
    steps = document.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _fail("a journey needs at least one step", "steps", '[{"id": "hello", "kind": "send", …}]')
    if len(steps) > MAX_STEPS:
        raise _fail(f"more than {MAX_STEPS} steps", "steps")
    by_id: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for position, step in enumerate(steps):
        where = f"steps[{position}]"
        if not isinstance(step, dict):
            raise _fail("a step is an object", where)
        step_id = step.get("id")
        if not isinstance(step_id, str) or not _STEP_ID.match(step_id):
            raise _fail(f"step id {step_id!r} is not valid", f"{where}.id", "1–64 letters, digits, _ or -")
        if step_id in by_id:
            raise _fail(f"step id {step_id!r} is used twice", f"{where}.id", "give every step its own id")
        if step.get("kind") not in STEP_KINDS:
            raise _fail(
                f"step kind {step.get('kind')!r} is not known", f"{where}.kind", ", ".join(STEP_KINDS)
            )
        _check_step(step, f"{where} ({step_id})")
        by_id[step_id] = step
        order.append(step_id)
    definition = Definition(document=document, steps=by_id, order=order)
    for position, step_id in enumerate(order):
        step = by_id[step_id]
        named = {k: step.get(k) for k in ("next", "then", "else", "timeout_next", "holdout") if step.get(k)}
        named.update({f"branches.{k}": v for k, v in (step.get("branches") or {}).items()})
        for field_name, target in named.items():
            if target not in by_id:
                raise _fail(
                    f"step {step_id!r} leads to {target!r}, which is not a step",
                    f"steps[{position}] ({step_id}).{field_name}",
                    "name the id of a step of this journey",
                )
    _check_acyclic(definition)
    return definition


def _check_acyclic(definition: Definition) -> None:
    state: dict[str, int] = {}

    def visit(step_id: str, path: list[str]) -> None:
        if state.get(step_id) == 2:
            return
        if state.get(step_id) == 1:
            circle = " → ".join([*path[path.index(step_id) :], step_id])
            raise _fail(
                f"the steps go round in a circle: {circle}",
                f"steps ({step_id})",
                "a journey runs each step once per customer; end a branch instead of going back",
            )
        state[step_id] = 1
        for target in definition.targets(step_id):
            visit(target, [*path, step_id])
        state[step_id] = 2

    for step_id in definition.order:
        visit(step_id, [])
