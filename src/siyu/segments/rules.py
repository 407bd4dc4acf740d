"""The segment rule as a typed tree, and its canonical JSON form and readable text form.

Both forms describe the same tree: `rule_from_json(rule_to_json(r)) == r` and `parse(to_text(r)) == r`.
Nodes carry where they came from (a line and column of the text, or a path into the JSON) so that an
error can point at it; that location takes no part in equality.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from siyu.core.errors import ValidationFailed


@dataclass(frozen=True)
class Location:
    """Where a node is: a position in the text form (1-based) or a path into the JSON form."""

    line: int | None = None
    column: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"line {self.line}, column {self.column}"
        return self.path or "rule"

    def details(self) -> dict[str, Any]:
        if self.line is not None:
            return {"line": self.line, "column": self.column}
        return {"path": self.path or "rule"}


class RuleError(ValidationFailed):
    """A rule that cannot be read or run: what is wrong, where (line/column or JSON path), how to fix it."""

    def __init__(self, message: str, *, at: Location | None = None, hint: str | None = None) -> None:
        super().__init__(
            message,
            where=str(at) if at else None,
            hint=(hint or "").strip() or None,
            details=at.details() if at else {},
        )


@dataclass(frozen=True)
class Ago:
    """A time relative to the `now` a rule is evaluated at: `ago("30d")`."""

    duration: str


Scalar: TypeAlias = str | int | float | bool | None
Value: TypeAlias = Scalar | Ago | tuple[Scalar, ...]

_LOC = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class And:
    rules: tuple[Rule, ...]
    at: Location | None = _LOC


@dataclass(frozen=True)
class Or:
    rules: tuple[Rule, ...]
    at: Location | None = _LOC


@dataclass(frozen=True)
class Not:
    rule: Rule
    at: Location | None = _LOC


@dataclass(frozen=True)
class Compare:
    """A field compared with a value: `city = "上海"`, `order_count >= 2`, `attr.level in ["gold"]`."""

    field: str
    op: str
    value: Value
    at: Location | None = _LOC


@dataclass(frozen=True)
class HasTag:
    """`tag("VIP")` (a tag of that name in any group) or `tag("会员等级/VIP")`."""

    tag: str
    at: Location | None = _LOC


@dataclass(frozen=True)
class HasIdentity:
    """`has(phone)`, `has(wecom_external_userid)`: the customer holds an identity of that kind."""

    kind: str
    at: Location | None = _LOC


@dataclass(frozen=True)
class HasConsent:
    """`consent(channel="sms", purpose="marketing")`: the decision in force is a grant."""

    channel: str
    purpose: str = "marketing"
    at: Location | None = _LOC


@dataclass(frozen=True)
class OrderMeasure:
    """`orders(category="奶茶", within="30d").count >= 2`; `.sum` is net paid in yuan."""

    measure: str
    op: str
    value: int | float
    category: str | None = None
    channel: str | None = None
    store: str | None = None
    within: str | None = None
    at: Location | None = _LOC


@dataclass(frozen=True)
class EventMeasure:
    """`events(type="message.opened", within="60d").count = 0`."""

    measure: str
    op: str
    value: int | float
    type: str | None = None
    within: str | None = None
    at: Location | None = _LOC


@dataclass(frozen=True)
class InSegment:
    """`segment("高价值")`: the customer matches another saved segment's rule."""

    segment: str
    at: Location | None = _LOC


Rule: TypeAlias = (
    And | Or | Not | Compare | HasTag | HasIdentity | HasConsent | OrderMeasure | EventMeasure | InSegment
)

ORDER_FILTERS = ("category", "channel", "store", "within")
EVENT_FILTERS = ("type", "within")
COMPARISON_OPS = ("=", "!=", ">", ">=", "<", "<=")
ALL_OPS = (*COMPARISON_OPS, "in", "contains")
_DURATION = re.compile(r"^([1-9][0-9]{0,4})([hdw])$")
_DURATION_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def duration_hours(text: str, *, at: Location | None = None) -> int:
    """Hours in a window such as "30d", "12h", "8w"."""
    found = _DURATION.match(text)
    if not found:
        raise RuleError(
            f"{text!r} is not a duration",
            at=at,
            hint='write a whole number and h, d or w, e.g. "30d" or "12h"',
        )
    return int(found.group(1)) * _DURATION_HOURS[found.group(2)]


# --- JSON -------------------------------------------------------------------------------------------


def _value_to_json(value: Value) -> Any:
    if isinstance(value, Ago):
        return {"ago": value.duration}
    if isinstance(value, tuple):
        return list(value)
    return value


def rule_to_json(rule: Rule) -> dict[str, Any]:
    """The canonical JSON of a rule: a tree of objects, each with its `type`."""
    match rule:
        case And(rules=rules):
            return {"type": "and", "rules": [rule_to_json(r) for r in rules]}
        case Or(rules=rules):
            return {"type": "or", "rules": [rule_to_json(r) for r in rules]}
        case Not(rule=inner):
            return {"type": "not", "rule": rule_to_json(inner)}
        case Compare():
            return {"type": "field", "field": rule.field, "op": rule.op, "value": _value_to_json(rule.value)}
        case HasTag():
            return {"type": "tag", "tag": rule.tag}
        case HasIdentity():
            return {"type": "has", "identity": rule.kind}
        case HasConsent():
            return {"type": "consent", "channel": rule.channel, "purpose": rule.purpose}
        case OrderMeasure():
            filters = {k: getattr(rule, k) for k in ORDER_FILTERS if getattr(rule, k) is not None}
            return {"type": "orders", **filters, "measure": rule.measure, "op": rule.op, "value": rule.value}
        case EventMeasure():
            # the event's type goes under "event_type": "type" names the node
            filters = {
                _EVENT_JSON_KEYS[k]: getattr(rule, k) for k in EVENT_FILTERS if getattr(rule, k) is not None
            }
            return {"type": "events", **filters, "measure": rule.measure, "op": rule.op, "value": rule.value}
        case InSegment():
            return {"type": "segment", "segment": rule.segment}
    raise TypeError(f"not a rule node: {rule!r}")


_EVENT_JSON_KEYS = {"type": "event_type", "within": "within"}
_NODE_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys), besides "type"
    "and": ({"rules"}, set()),
    "or": ({"rules"}, set()),
    "not": ({"rule"}, set()),
    "field": ({"field", "op", "value"}, set()),
    "tag": ({"tag"}, set()),
    "has": ({"identity"}, set()),
    "consent": ({"channel"}, {"purpose"}),
    "orders": ({"measure", "op", "value"}, set(ORDER_FILTERS)),
    "events": ({"measure", "op", "value"}, set(_EVENT_JSON_KEYS.values())),
    "segment": ({"segment"}, set()),
}


def _scalar_from_json(value: Any, at: Location) -> Scalar:
    if value is None or isinstance(value, str | bool | int):
        return value  # type: ignore[no-any-return]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RuleError("numbers must be finite", at=at)
        return value
    raise RuleError(
        f"{json.dumps(value, ensure_ascii=False)} is not a value",
        at=at,
        hint="use a string, number, true, false or null",
    )


def _value_from_json(value: Any, at: Location) -> Value:
    if isinstance(value, dict):
        if set(value) == {"ago"} and isinstance(value["ago"], str):
            return Ago(value["ago"])
        raise RuleError('an object value must be {"ago": "30d"}', at=at)
    if isinstance(value, list):
        return tuple(_scalar_from_json(v, Location(path=f"{at.path}[{i}]")) for i, v in enumerate(value))
    return _scalar_from_json(value, at)


def _string(node: dict[str, Any], key: str, path: str) -> str:
    value = node.get(key)
    if not isinstance(value, str):
        raise RuleError(f"{key!r} must be a string", at=Location(path=f"{path}.{key}"))
    return value


def _optional_string(node: dict[str, Any], key: str, path: str) -> str | None:
    return None if node.get(key) is None else _string(node, key, path)


def _number(node: dict[str, Any], key: str, path: str) -> int | float:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleError(f"{key!r} must be a number", at=Location(path=f"{path}.{key}"))
    return value


def rule_from_json(node: Any, path: str = "rule") -> Rule:
    """The rule a canonical JSON document describes; a RuleError names the path of anything wrong."""
    import difflib

    at = Location(path=path)
    if not isinstance(node, dict):
        raise RuleError('a rule node must be an object with a "type"', at=at)
    kind = node.get("type")
    if kind not in _NODE_KEYS:
        close = difflib.get_close_matches(str(kind), list(_NODE_KEYS), n=1)
        raise RuleError(
            f"unknown rule node type {kind!r}",
            at=Location(path=f"{path}.type"),
            hint=(f"did you mean {close[0]!r}? " if close else "") + "types: " + ", ".join(_NODE_KEYS),
        )
    required, optional = _NODE_KEYS[kind]
    keys = set(node) - {"type"}
    if missing := required - keys:
        raise RuleError(f"a {kind!r} node needs {', '.join(sorted(missing))}", at=at)
    if extra := keys - required - optional:
        raise RuleError(
            f"a {kind!r} node has no {', '.join(sorted(extra))}",
            at=at,
            hint="allowed: " + ", ".join(sorted(required | optional)),
        )
    if kind in ("and", "or"):
        rules = node["rules"]
        if not isinstance(rules, list):
            raise RuleError("'rules' must be a list", at=Location(path=f"{path}.rules"))
        children = tuple(rule_from_json(r, f"{path}.rules[{i}]") for i, r in enumerate(rules))
        return And(children, at=at) if kind == "and" else Or(children, at=at)
    if kind == "not":
        return Not(rule_from_json(node["rule"], f"{path}.rule"), at=at)
    if kind == "field":
        return Compare(
            _string(node, "field", path),
            _string(node, "op", path),
            _value_from_json(node["value"], Location(path=f"{path}.value")),
            at=at,
        )
    if kind == "tag":
        return HasTag(_string(node, "tag", path), at=at)
    if kind == "has":
        return HasIdentity(_string(node, "identity", path), at=at)
    if kind == "consent":
        purpose = _optional_string(node, "purpose", path)
        return HasConsent(_string(node, "channel", path), "marketing" if purpose is None else purpose, at=at)
    if kind == "segment":
        return InSegment(_string(node, "segment", path), at=at)
    measure, op, value = (
        _string(node, "measure", path),
        _string(node, "op", path),
        _number(node, "value", path),
    )
    if kind == "orders":
        return OrderMeasure(
            measure, op, value, **{k: _optional_string(node, k, path) for k in ORDER_FILTERS}, at=at
        )
    return EventMeasure(
        measure,
        op,
        value,
        **{k: _optional_string(node, _EVENT_JSON_KEYS[k], path) for k in EVENT_FILTERS},
        at=at,
    )


# --- text -------------------------------------------------------------------------------------------


def _scalar_text(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def value_text(value: Value) -> str:
    if isinstance(value, Ago):
        return f"ago({_scalar_text(value.duration)})"
    if isinstance(value, tuple):
        return "[" + ", ".join(_scalar_text(v) for v in value) + "]"
    return _scalar_text(value)


def _call(name: str, args: dict[str, str | None]) -> str:
    return name + "(" + ", ".join(f"{k}={_scalar_text(v)}" for k, v in args.items() if v is not None) + ")"


def to_text(rule: Rule) -> str:
    """The readable text form: `rfm.layer = "重要挽留" and tag("VIP") and orders(within="30d").count >= 2`."""
    match rule:
        case And(rules=rules):
            # a nested and/or keeps its parentheses, so that the text reads back as the same tree
            return " and ".join(_wrapped(r, (And, Or)) for r in rules) if rules else "all"
        case Or(rules=rules):
            return " or ".join(_wrapped(r, (Or,)) for r in rules) if rules else "none"
        case Not(rule=inner):
            return "not " + _wrapped(inner, (And, Or))
        case Compare():
            return f"{rule.field} {rule.op} {value_text(rule.value)}"
        case HasTag():
            return f"tag({_scalar_text(rule.tag)})"
        case HasIdentity():
            return f"has({rule.kind})"
        case HasConsent():
            return _call("consent", {"channel": rule.channel, "purpose": rule.purpose})
        case OrderMeasure():
            args = {k: getattr(rule, k) for k in ORDER_FILTERS}
            return f"{_call('orders', args)}.{rule.measure} {rule.op} {_scalar_text(rule.value)}"
        case EventMeasure():
            args = {k: getattr(rule, k) for k in EVENT_FILTERS}
            return f"{_call('events', args)}.{rule.measure} {rule.op} {_scalar_text(rule.value)}"
        case InSegment():
            return f"segment({_scalar_text(rule.segment)})"
    raise TypeError(f"not a rule node: {rule!r}")


def _wrapped(rule: Rule, kinds: tuple[type, ...]) -> str:
    text = to_text(rule)
    if isinstance(rule, kinds) and isinstance(rule, And | Or) and len(rule.rules) > 1:
        return f"({text})"
    return text


def normalize(rule: Rule) -> Rule:
    """The same rule with every one-child group replaced by its child (what the text form reads back)."""
    match rule:
        case And(rules=rules) | Or(rules=rules):
            children = tuple(normalize(r) for r in rules)
            if len(children) == 1:
                return children[0]
            return And(children, at=rule.at) if isinstance(rule, And) else Or(children, at=rule.at)
        case Not(rule=inner):
            return Not(normalize(inner), at=rule.at)
    return rule


def walk(rule: Rule):  # type: ignore[no-untyped-def]
    """Every node of the tree, parents before children."""
    yield rule
    if isinstance(rule, And | Or):
        for child in rule.rules:
            yield from walk(child)
    elif isinstance(rule, Not):
        yield from walk(rule.rule)
