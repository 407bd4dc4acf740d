"""Reading the text form of a rule with a LALR grammar (lark): `tag("VIP") and orders(within="30d").count >= 2`.

A syntax error names its line and column, what was found and what could stand there; a call or argument
that does not exist gets the closest existing name as a suggestion.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from siyu.segments.rules import (
    EVENT_FILTERS,
    ORDER_FILTERS,
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
    Scalar,
    Value,
)

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negation
         | atom
?atom: "(" or_expr ")"
     | comparison
     | call -> predicate
     | _ALL -> match_all
     | _NONE -> match_none
comparison: operand OP value
          | operand _EQ value -> equals
          | operand _CONTAINS value -> contains
          | operand _IN list_value -> membership
?operand: path
        | call "." NAME -> measured
path: NAME ("." NAME)*
call: NAME "(" [arg ("," arg)*] ")"
?arg: NAME _EQ value -> keyword
    | value -> positional
    | NAME -> bare
?value: ESCAPED_STRING -> string
      | SIGNED_NUMBER -> number
      | _TRUE -> true
      | _FALSE -> false
      | _NULL -> null
      | list_value
      | NAME "(" ESCAPED_STRING ")" -> value_call
list_value: "[" [value ("," value)*] "]"
OP: "!=" | ">=" | "<=" | ">" | "<"
_EQ: "="
_AND: "and"
_OR: "or"
_NOT: "not"
_IN: "in"
_CONTAINS: "contains"
_TRUE: "true"
_FALSE: "false"
_NULL: "null"
_ALL: "all"
_NONE: "none"
NAME: /[^\W\d]\w*/
%import common.ESCAPED_STRING
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""

# what the parser's terminal names mean to someone writing a rule
_EXPECTED = {
    "NAME": "a name",
    "ESCAPED_STRING": 'a "quoted string"',
    "SIGNED_NUMBER": "a number",
    "OP": "an operator (!= > >= < <=)",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "DOT": "'.'",
    "_EQ": "'='",
    "_AND": "and",
    "_OR": "or",
    "_NOT": "not",
    "_IN": "in",
    "_CONTAINS": "contains",
    "_TRUE": "true",
    "_FALSE": "false",
    "_NULL": "null",
    "_ALL": "all",
    "_NONE": "none",
    "$END": "the end of the rule",
}
PREDICATES = ("tag", "has", "consent", "segment")
MEASURED = {"orders": ("count", "sum"), "events": ("count",)}
VALUE_CALLS = ("ago",)


@cache
def _parser() -> Lark:
    # the basic lexer reserves the keywords (and, or, not, in, …) everywhere: `tag("a") and and` is an error
    # at the second "and", not a field called "and"
    return Lark(GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False)


def _at(item: Any) -> Location:
    line = getattr(item, "line", None)
    column = getattr(item, "column", None)
    return Location(line=line, column=column)


@dataclass
class _Call:
    name: str
    positional: list[tuple[Value | str, Location]]
    keywords: dict[str, tuple[Value, Location]]
    at: Location


@dataclass
class _Bare:
    """A bare name as an argument: `has(phone)`."""

    name: str


def _suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def _string_arg(call: _Call, key: str, *, positional_ok: bool = True) -> str | None:
    if key in call.keywords:
        value, at = call.keywords[key]
        if not isinstance(value, str):
            raise RuleError(f"{call.name}({key}=…) takes a quoted string", at=at)
        return value
    return None


def _only(call: _Call, allowed: tuple[str, ...], *, positional: int = 0) -> None:
    for key, (_, at) in call.keywords.items():
        if key not in allowed:
            raise RuleError(
                f"{call.name}() has no argument {key!r}",
                at=at,
                hint=_suggest(key, allowed)
                + ("arguments: " + ", ".join(allowed) if allowed else "it takes none"),
            )
    if len(call.positional) > positional:
        raise RuleError(
            f"{call.name}() takes {positional or 'no'} unnamed argument{'s' if positional != 1 else ''}",
            at=call.positional[positional][1],
            hint="name the arguments: " + ", ".join(f"{a}=…" for a in allowed) if allowed else None,
        )


def _single_string(call: _Call, example: str) -> str:
    _only(call, (), positional=1)
    if not call.positional:
        raise RuleError(f"{call.name}() needs one argument", at=call.at, hint=f"e.g. {example}")
    value, at = call.positional[0]
    if isinstance(value, _Bare) or not isinstance(value, str):
        raise RuleError(f"{call.name}() takes a quoted string", at=at, hint=f"e.g. {example}")
    return value


def _predicate(call: _Call) -> Rule:
    if call.name == "tag":
        return HasTag(_single_string(call, 'tag("VIP") or tag("会员等级/VIP")'), at=call.at)
    if call.name == "segment":
        return InSegment(_single_string(call, 'segment("高价值")'), at=call.at)
    if call.name == "has":
        _only(call, (), positional=1)
        if not call.positional:
            raise RuleError("has() needs an identity kind", at=call.at, hint="e.g. has(phone)")
        value, at = call.positional[0]
        kind = value.name if isinstance(value, _Bare) else value
        if not isinstance(kind, str):
            raise RuleError("has() takes an identity kind", at=at, hint="e.g. has(phone)")
        return HasIdentity(kind, at=call.at)
    if call.name == "consent":
        _only(call, ("channel", "purpose"))
        channel = _string_arg(call, "channel")
        if channel is None:
            raise RuleError("consent() needs a channel", at=call.at, hint='e.g. consent(channel="sms")')
        purpose = _string_arg(call, "purpose")
        return HasConsent(channel, "marketing" if purpose is None else purpose, at=call.at)
    if call.name in MEASURED:
        measures = " or ".join(f".{m}" for m in MEASURED[call.name])
        raise RuleError(
            f"{call.name}(…) needs a measure ({measures}) and a comparison",
            at=call.at,
            hint=f'e.g. {call.name}(within="30d").count >= 1',
        )
    raise RuleError(
        f"unknown condition {call.name}()",
        at=call.at,
        hint=_suggest(call.name, (*PREDICATES, *MEASURED))
        + "conditions: "
        + ", ".join((*PREDICATES, *MEASURED)),
    )


def _number_value(value: Value, at: Location, what: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"{what} is compared with a number", at=at, hint="e.g. >= 2")
    return value


class _ToRule(Transformer[Token, Rule]):
    """The parse tree to rule nodes, keeping each node's line and column."""

    # values
    def string(self, items: list[Token]) -> str:
        return str(json.loads(items[0]))

    def number(self, items: list[Token]) -> int | float:
        text = str(items[0])
        return float(text) if any(c in text for c in ".eE") else int(text)

    def true(self, _: list[Token]) -> bool:
        return True

    def false(self, _: list[Token]) -> bool:
        return False

    def null(self, _: list[Token]) -> None:
        return None

    def list_value(self, items: list[Scalar]) -> tuple[Scalar, ...]:
        for item in items:
            if isinstance(item, tuple | Ago):
                raise RuleError("a list holds plain values only", hint='e.g. ["上海", "北京"]')
        return tuple(items)

    def value_call(self, items: list[Token]) -> Ago:
        name, argument = items
        if str(name) != "ago":
            raise RuleError(
                f"unknown value {name}()",
                at=_at(name),
                hint=_suggest(str(name), VALUE_CALLS)
                + 'values: strings, numbers, true, false, null, ago("30d")',
            )
        return Ago(str(json.loads(argument)))

    # calls
    @v_args(meta=True)
    def call(self, meta: Any, items: list[Any]) -> _Call:
        name, *args = items
        call = _Call(str(name), [], {}, _at(name))
        for arg in args:
            kind, payload, at = arg
            if kind == "keyword":
                key, value = payload
                if key in call.keywords:
                    raise RuleError(f"{call.name}() is given {key!r} twice", at=at)
                call.keywords[key] = (value, at)
            else:
                if call.keywords:
                    raise RuleError("unnamed arguments come before named ones", at=at)
                call.positional.append((payload, at))
        return call

    @v_args(meta=True)
    def keyword(self, meta: Any, items: list[Any]) -> tuple[str, Any, Location]:
        return ("keyword", (str(items[0]), items[1]), _at(items[0]))

    @v_args(meta=True)
    def positional(self, meta: Any, items: list[Any]) -> tuple[str, Any, Location]:
        return ("positional", items[0], _at(meta))

    @v_args(meta=True)
    def bare(self, meta: Any, items: list[Token]) -> tuple[str, Any, Location]:
        return ("positional", _Bare(str(items[0])), _at(items[0]))

    # operands
    def path(self, items: list[Token]) -> tuple[str, Location]:
        return ".".join(str(t) for t in items), _at(items[0])

    def measured(self, items: list[Any]) -> tuple[_Call, str, Location]:
        call, measure = items
        return call, str(measure), _at(measure)

    def _compare(self, operand: Any, op: str, value: Value) -> Rule:
        if isinstance(operand, _Call):
            raise RuleError(f"{operand.name}(…) is a condition of its own, not compared", at=operand.at)
        if isinstance(operand, tuple) and len(operand) == 2:
            name, at = operand
            return Compare(name, op, value, at=at)
        call, measure, measure_at = operand
        if call.name not in MEASURED and call.name not in PREDICATES:
            _predicate(call)  # raises: unknown condition, with a suggestion
        if call.name not in MEASURED:
            raise RuleError(
                f"{call.name}(…) has no measures",
                at=call.at,
                hint=_suggest(call.name, tuple(MEASURED)) + "measures exist on orders(…) and events(…)",
            )
        if measure not in MEASURED[call.name]:
            raise RuleError(
                f"{call.name}(…) has no measure {measure!r}",
                at=measure_at,
                hint=_suggest(measure, MEASURED[call.name]) + "measures: " + ", ".join(MEASURED[call.name]),
            )
        number = _number_value(value, measure_at, f"{call.name}(…).{measure}")
        if call.name == "orders":
            _only(call, ORDER_FILTERS)
            filters = {k: _string_arg(call, k) for k in ORDER_FILTERS}
            return OrderMeasure(measure, op, number, **filters, at=call.at)
        _only(call, EVENT_FILTERS)
        filters = {k: _string_arg(call, k) for k in EVENT_FILTERS}
        return EventMeasure(measure, op, number, **filters, at=call.at)

    def comparison(self, items: list[Any]) -> Rule:
        operand, op, value = items
        return self._compare(operand, str(op), value)

    def equals(self, items: list[Any]) -> Rule:
        operand, value = items
        return self._compare(operand, "=", value)

    def contains(self, items: list[Any]) -> Rule:
        operand, value = items
        return self._compare(operand, "contains", value)

    def membership(self, items: list[Any]) -> Rule:
        operand, value = items
        return self._compare(operand, "in", value)

    # conditions and groups
    def predicate(self, items: list[_Call]) -> Rule:
        return _predicate(items[0])

    @v_args(meta=True)
    def match_all(self, meta: Any, _: list[Any]) -> Rule:
        return And((), at=_at(meta))

    @v_args(meta=True)
    def match_none(self, meta: Any, _: list[Any]) -> Rule:
        return Or((), at=_at(meta))

    @v_args(meta=True)
    def negation(self, meta: Any, items: list[Rule]) -> Rule:
        return Not(items[0], at=_at(meta))

    @v_args(meta=True)
    def and_expr(self, meta: Any, items: list[Rule]) -> Rule:
        return And(tuple(items), at=_at(meta))

    @v_args(meta=True)
    def or_expr(self, meta: Any, items: list[Rule]) -> Rule:
        return Or(tuple(items), at=_at(meta))


def _expected(tokens: set[str]) -> str:
    names = sorted({_EXPECTED.get(t, t.lower()) for t in tokens if not t.startswith("__")})
    return "expected " + ", ".join(names) if names else ""


def _syntax_error(text: str, exc: UnexpectedInput) -> RuleError:
    at = Location(line=exc.line, column=exc.column) if exc.line not in (None, -1) else None
    expected = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    # after a bare name where a value goes, only '(' (of ago(…)) may follow: an unquoted string
    hint = 'strings go in double quotes, e.g. city = "上海"' if expected == {"LPAR"} else _expected(expected)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.splitlines() or [""]
        at = Location(line=len(lines), column=len(lines[-1]) + 1)
        return RuleError("the rule ends too early", at=at, hint=hint)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream is not None else "?"
        hint = "strings go in double quotes" if char in "'“”‘’" else _expected(set(exc.allowed or ()))
        return RuleError(f"unexpected character {char!r}", at=at, hint=hint)
    assert isinstance(exc, UnexpectedToken)
    return RuleError(f"unexpected {str(exc.token)!r}", at=at, hint=hint)


def parse(text: str) -> Rule:
    """The rule a text form describes; a RuleError gives the line and column of the first problem."""
    if not text.strip():
        raise RuleError("the rule is empty", at=Location(line=1, column=1), hint='e.g. tag("VIP")')
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        return _ToRule().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, RuleError):
            raise exc.orig_exc from None
        raise
