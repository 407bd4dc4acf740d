"""What a rule may test: the field catalog with each field's kind, operators and values, and the static
checks of a rule (unknown names with suggestions, wrong operators or values)
and of what it could match (everyone, or no one).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from siyu.customers import service as customers
from siyu.lifecycle.models import Stage
from siyu.rfm.service import LAYER_NAMES
from siyu.segments.rules import (
    COMPARISON_OPS,
    Ago,
    And,
    Compare,
    EventMeasure,
    HasConsent,
    HasIdentity,
    HasTag,
    InSegment,
    Location,
    Not,
    Or,
    OrderMeasure,
    Rule,
    RuleError,
    Value,
    duration_hours,
    value_text,
    walk,
)

STAGES = tuple(stage.value for stage in Stage)


class Kind(StrEnum):
    TEXT = "text"  # = != in; null for a missing value
    CHOICE = "choice"  # = != in, one of a fixed set
    DATE = "date"  # a calendar day: = != < <= > >= "2026-05-01"
    TIME = "time"  # an instant: < <= > >= "2026-05-01" | "2026-05-01T10:00:00+08:00" | ago("30d"); = null
    COUNT = "count"  # a whole number ≥ 0
    MONEY = "money"  # yuan in the rule, cents in the database
    CHANNEL = "channel"  # a channel key, name or alias
    OWNER = "owner"  # a member's email or user id
    LIST = "list"  # contains "奶茶"
    ATTRIBUTE = "attribute"  # a custom attribute: strings, numbers, true/false
    SCORE = "score"  # a number from the last scoring run (siyu clv score, siyu rfm); null when not scored
    LAYER = "layer"  # one of a fixed set, from the last scoring run; null when not scored


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    column: str  # the key in customers.RULE_COLUMNS (profile or rollup)
    doc: str
    choices: tuple[str, ...] = ()


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("name", Kind.TEXT, "name", "the customer's name"),
        Field("gender", Kind.CHOICE, "gender", "male, female or unknown", customers.GENDERS),
        Field("birthday", Kind.DATE, "birthday", "date of birth"),
        Field("city", Kind.TEXT, "city", "city of the profile"),
        Field("created_at", Kind.TIME, "created_at", "when the customer entered the pool"),
        Field("owner", Kind.OWNER, "owner_user_id", "the staff member the customer is assigned to"),
        Field("order_count", Kind.COUNT, "order_count", "purchases, all time"),
        Field("net_revenue", Kind.MONEY, "net_revenue_cents", "paid less refunded, yuan, all time"),
        Field("avg_order_value", Kind.MONEY, "avg_order_value_cents", "net revenue per purchase, yuan"),
        Field("first_order_at", Kind.TIME, "first_order_at", "first purchase"),
        Field("last_order_at", Kind.TIME, "last_order_at", "latest purchase"),
        Field("last_event_at", Kind.TIME, "last_event_at", "latest event"),
        Field("first_channel", Kind.CHANNEL, "first_channel_id", "channel of the first purchase"),
        Field("last_channel", Kind.CHANNEL, "last_channel_id", "channel of the latest purchase"),
        Field("categories", Kind.LIST, "categories", "categories ever bought"),
        # from the last scoring runs, "source:column": predicted value (siyu clv score) and RFM (siyu rfm)
        Field("clv.p_alive", Kind.SCORE, "clv:p_alive", "probability the customer is still a buyer, 0–1"),
        Field(
            "clv.expected_purchases",
            Kind.SCORE,
            "clv:expected_purchases_90d",
            "purchases expected in 90 days",
        ),
        Field(
            "clv.value", Kind.SCORE, "clv:clv_cents", "predicted lifetime value, yuan (12 months, discounted)"
        ),
        Field(
            "clv.percentile",
            Kind.SCORE,
            "clv:clv_percentile",
            "rank of the predicted value, 0–100 (90: top 10 %)",
        ),
        Field("rfm.r", Kind.SCORE, "rfm:r", "recency score 1–5 (5: bought most recently)"),
        Field("rfm.f", Kind.SCORE, "rfm:f", "frequency score 1–5"),
        Field("rfm.m", Kind.SCORE, "rfm:m", "monetary score 1–5"),
        Field("rfm.layer", Kind.LAYER, "rfm:layer", "one of the eight RFM layers", LAYER_NAMES),
        Field(
            "lifecycle.stage", Kind.LAYER, "lifecycle:stage", "the lifecycle stage of the last sweep", STAGES
        ),
    )
}
ATTRIBUTE_PREFIX = "attr."
_ATTRIBUTE_KEY = re.compile(r"^[^\W\d]\w{0,63}$")
_OPS: dict[Kind, tuple[str, ...]] = {
    Kind.TEXT: ("=", "!=", "in"),
    Kind.CHOICE: ("=", "!=", "in"),
    Kind.DATE: (*COMPARISON_OPS,),
    Kind.TIME: ("=", "!=", ">", ">=", "<", "<="),
    Kind.COUNT: (*COMPARISON_OPS, "in"),
    Kind.MONEY: COMPARISON_OPS,
    Kind.CHANNEL: ("=", "!=", "in"),
    Kind.OWNER: ("=", "!=", "in"),
    Kind.LIST: ("contains",),
    Kind.ATTRIBUTE: (*COMPARISON_OPS, "in"),
    Kind.SCORE: COMPARISON_OPS,
    Kind.LAYER: ("=", "!=", "in"),
}
MEASURE_OPS = COMPARISON_OPS


def ops_of(kind: Kind) -> tuple[str, ...]:
    """The operators a field of this kind takes (what the builder offers)."""
    return _OPS[kind]


def field_of(name: str, *, at: Location | None) -> Field:
    """The catalog entry of a field name (`attr.<key>` for custom attributes), or a RuleError suggesting
    the closest name."""
    if name.startswith(ATTRIBUTE_PREFIX):
        key = name[len(ATTRIBUTE_PREFIX) :]
        if not _ATTRIBUTE_KEY.match(key):
            raise RuleError(f"{key!r} is not an attribute name", at=at, hint="e.g. attr.member_level")
        return Field(name, Kind.ATTRIBUTE, key, "custom attribute")
    found = FIELDS.get(name)
    if found is None:
        if name == "lifecycle":
            found = FIELDS["lifecycle.stage"]
        else:
            close = difflib.get_close_matches(name, [*FIELDS, "attr.<name>"], n=1, cutoff=0.5)
            raise RuleError(
                f"unknown field {name!r}",
                at=at,
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + "fields: "
                + ", ".join(FIELDS)
                + ", attr.<name>",
            )
    return found


def parse_time(text: str, *, at: Location | None) -> datetime | date:
    """A date ("2026-05-01", midnight in the workspace zone) or an instant ("2026-05-01T10:00:00+08:00";
    without an offset, in the workspace zone)."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RuleError(
            f"{text!r} is not a date or time",
            at=at,
            hint='write "2026-05-01", "2026-05-01 10:00" or ago("30d")',
        ) from None


def _values(value: Value) -> tuple[Value, ...]:
    return value if isinstance(value, tuple) else (value,)


def _need(ok: bool, message: str, at: Location | None, hint: str | None = None) -> None:
    if not ok:
        raise RuleError(message, at=at, hint=hint)


def _check_compare(rule: Compare) -> None:
    field = field_of(rule.field, at=rule.at)
    ops = _OPS[field.kind]
    _need(
        rule.op in ops,
        f"{rule.field} cannot be compared with {rule.op!r}",
        rule.at,
        "operators for " + rule.field + ": " + ", ".join(ops),
    )
    if rule.op == "in":
        _need(isinstance(rule.value, tuple), "'in' takes a list", rule.at, 'e.g. city in ["上海", "北京"]')
    else:
        _need(not isinstance(rule.value, tuple), f"{rule.op!r} takes one value, not a list", rule.at)
    shown = value_text(rule.value)
    for value in _values(rule.value):
        if value is None:
            _need(
                rule.op in ("=", "!=", "in")
                and field.kind not in (Kind.CHOICE, Kind.LIST, Kind.COUNT, Kind.MONEY),
                f"{rule.field} {rule.op} null cannot be tested",
                rule.at,
                f"{rule.field} is never missing"
                if field.kind in (Kind.CHOICE, Kind.COUNT, Kind.MONEY)
                else None,
            )
            continue
        if field.kind in (Kind.TEXT, Kind.CHANNEL, Kind.LIST):
            _need(
                isinstance(value, str), f"{rule.field} is compared with a quoted string, not {shown}", rule.at
            )
        elif field.kind in (Kind.CHOICE, Kind.LAYER):
            _need(
                value in field.choices,
                f"{rule.field} is never {shown}",
                rule.at,
                "one of " + ", ".join(f'"{c}"' for c in field.choices),
            )
        elif field.kind in (Kind.COUNT, Kind.MONEY, Kind.SCORE):
            _need(
                isinstance(value, int | float) and not isinstance(value, bool),
                f"{rule.field} is compared with a number, not {shown}",
                rule.at,
                "money is written in yuan, e.g. net_revenue >= 500"
                if field.kind is Kind.MONEY or field.column == "clv:clv_cents"
                else None,
            )
        elif field.kind is Kind.DATE:
            _need(
                isinstance(value, str) and len(value) == 10,
                f"{rule.field} is compared with a date",
                rule.at,
                'e.g. "1990-05-01"',
            )
            assert isinstance(value, str)
            parse_time(value, at=rule.at)
        elif field.kind is Kind.TIME:
            _need(
                rule.op not in ("=", "!="),
                f"{rule.field} {rule.op} a time is almost never true",
                rule.at,
                f"compare with < or >, or test {rule.field} = null",
            )
            if isinstance(value, Ago):
                duration_hours(value.duration, at=rule.at)
            else:
                _need(
                    isinstance(value, str),
                    f"{rule.field} is compared with a time",
                    rule.at,
                    'e.g. "2026-05-01" or ago("30d")',
                )
                assert isinstance(value, str)
                parse_time(value, at=rule.at)
        elif field.kind is Kind.OWNER:
            _need(
                isinstance(value, str | int) and not isinstance(value, bool),
                "owner is a member's email or user id",
                rule.at,
                'e.g. owner = "li@brand.com"',
            )
        elif field.kind is Kind.ATTRIBUTE:
            _need(not isinstance(value, Ago), "custom attributes hold no times", rule.at)
            if rule.op in (">", ">=", "<", "<="):
                _need(
                    isinstance(value, int | float) and not isinstance(value, bool),
                    f"{rule.op!r} compares numbers; {shown} is not one",
                    rule.at,
                )
    if isinstance(rule.value, Ago) and field.kind is not Kind.TIME:
        raise RuleError(f"{rule.field} is not a time: ago(…) does not apply", at=rule.at)


def _check_measure(rule: OrderMeasure | EventMeasure) -> None:
    _need(rule.op in MEASURE_OPS, f"a measure is compared with {', '.join(MEASURE_OPS)}", rule.at)
    if rule.within is not None:
        duration_hours(rule.within, at=rule.at)
    if isinstance(rule, OrderMeasure):
        _need(
            rule.measure in ("count", "sum"),
            f"orders(…) has no measure {rule.measure!r}",
            rule.at,
            "count or sum",
        )
    else:
        _need(rule.measure == "count", f"events(…) has no measure {rule.measure!r}", rule.at, "count")


def check(rule: Rule) -> None:
    """Raise the first RuleError of a rule that needs no database to see (names, operators, values)."""
    for node in walk(rule):
        if isinstance(node, Compare):
            _check_compare(node)
        elif isinstance(node, OrderMeasure | EventMeasure):
            _check_measure(node)
        elif isinstance(node, HasConsent):
            _need(
                node.channel in customers.CONTACT_CHANNELS,
                f"unknown contact channel {node.channel!r}",
                node.at,
                _suggestion(node.channel, customers.CONTACT_CHANNELS)
                + "channels: "
                + ", ".join(customers.CONTACT_CHANNELS),
            )
            _need(
                node.purpose in customers.CONSENT_PURPOSES,
                f"unknown consent purpose {node.purpose!r}",
                node.at,
                "purposes: " + ", ".join(customers.CONSENT_PURPOSES),
            )
        elif isinstance(node, HasIdentity):
            _need(
                re.fullmatch(r"[a-z][a-z0-9_]{0,31}", node.kind) is not None,
                f"{node.kind!r} is not an identity kind",
                node.at,
                "e.g. has(phone) or has(wecom_external_userid)",
            )
        elif isinstance(node, HasTag | InSegment):
            name = node.tag if isinstance(node, HasTag) else node.segment
            _need(bool(name.strip()), "the name is empty", node.at)


def _suggestion(name: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def integer_threshold(op: str, value: int | float, scale: int) -> tuple[str, int] | bool:
    """`x op value * scale` for a whole number x, as a comparison with a whole number — or True / False
    when it holds for every / no whole number (`count = 1.5`). Money: 99.995 yuan is 9999.5 cents."""
    exact = Decimal(str(value)) * scale
    if exact == exact.to_integral_value():
        return op, int(exact)
    low, high = math.floor(exact), math.ceil(exact)
    between: dict[str, tuple[str, int] | bool] = {
        "=": False,
        "!=": True,
        ">": (">", low),
        ">=": (">=", high),
        "<": ("<", high),
        "<=": ("<=", low),
    }
    return between[op]


# --- what a rule could match ------------------------------------------------------------------------

_NON_NEGATIVE = (Kind.COUNT, Kind.MONEY)


def _bound(op: str, value: Value) -> tuple[bool, bool] | None:
    """(true for every value ≥ 0, false for every value ≥ 0) of `x op value`, for x that is never negative."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = Decimal(str(value))
    every = {">=": v <= 0, ">": v < 0, "!=": v < 0}.get(op, False)
    none = {"<": v <= 0, "<=": v < 0, "=": v < 0}.get(op, False)
    return every, none


def _leaf_bounds(rule: Rule) -> tuple[bool, bool]:
    if isinstance(rule, OrderMeasure | EventMeasure):
        return _bound(rule.op, rule.value) or (False, False)
    if isinstance(rule, Compare) and rule.field in FIELDS and FIELDS[rule.field].kind in _NON_NEGATIVE:
        if rule.op == "in" and isinstance(rule.value, tuple):
            return False, not rule.value
        return _bound(rule.op, rule.value) or (False, False)
    return False, False


def _positive(rule: Rule) -> tuple[bool, Rule]:
    """(negated, the rule without its negation): `x != v` reads as `not x = v`."""
    if isinstance(rule, Not):
        negated, inner = _positive(rule.rule)
        return not negated, inner
    if isinstance(rule, Compare) and rule.op == "!=":
        return True, Compare(rule.field, "=", rule.value)
    return False, rule


def _has_complements(rules: tuple[Rule, ...]) -> bool:
    seen: dict[Rule, set[bool]] = {}
    for rule in rules:
        negated, inner = _positive(rule)
        seen.setdefault(inner, set()).add(negated)
    return any(len(signs) == 2 for signs in seen.values())


def always(rule: Rule) -> bool:
    """True when the rule holds for every customer whatever the data (a conservative test)."""
    match rule:
        case And(rules=rules):
            return all(always(r) for r in rules)
        case Or(rules=rules):
            return any(always(r) for r in rules) or _has_complements(rules)
        case Not(rule=inner):
            return never(inner)
    return _leaf_bounds(rule)[0]


def never(rule: Rule) -> bool:
    """True when the rule holds for no customer whatever the data (a conservative test)."""
    match rule:
        case And(rules=rules):
            return any(never(r) for r in rules) or _has_complements(rules)
        case Or(rules=rules):
            return all(never(r) for r in rules)
        case Not(rule=inner):
            return always(inner)
    return _leaf_bounds(rule)[1]


def warnings(rule: Rule) -> list[str]:
    """What is suspicious about a rule that is otherwise valid: it could match everyone, or no one."""
    if always(rule):
        return ["this rule matches every customer"]
    if never(rule):
        return ["this rule matches no customer"]
    return []
