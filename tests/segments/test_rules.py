"""The rule language without a database: parsing, the two forms round-tripping, errors that name their
position and suggest a fix, and the static checks (fields, operators, values, match-everyone)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.segments import fields
from siyu.segments.fields import integer_threshold
from siyu.segments.parser import parse
from siyu.segments.rules import (
    Ago,
    And,
    Compare,
    EventMeasure,
    HasConsent,
    HasIdentity,
    HasTag,
    InSegment,
    Not,
    Or,
    OrderMeasure,
    Rule,
    RuleError,
    normalize,
    rule_from_json,
    rule_to_json,
    to_text,
)

EXAMPLE = 'rfm.layer = "重要挽留" and tag("VIP") and orders(category="奶茶", within="30d").count >= 2'


def test_the_issue_example_parses_to_its_tree() -> None:
    assert parse(EXAMPLE) == And(
        (
            Compare("rfm.layer", "=", "重要挽留"),
            HasTag("VIP"),
            OrderMeasure("count", ">=", 2, category="奶茶", within="30d"),
        )
    )
    assert to_text(parse(EXAMPLE)) == EXAMPLE


def test_precedence_not_binds_tighter_than_and_than_or() -> None:
    rule = parse('not tag("a") and has(phone) or city in ["上海", null] and not (x.y = 1 or z != true)')
    assert rule == Or(
        (
            And((Not(HasTag("a")), HasIdentity("phone"))),
            And(
                (
                    Compare("city", "in", ("上海", None)),
                    Not(Or((Compare("x.y", "=", 1), Compare("z", "!=", True)))),
                )
            ),
        )
    )


@pytest.mark.parametrize(
    "text",
    [
        'consent(channel="sms", purpose="marketing") and segment("高价值")',
        'events(type="message.opened", within="60d").count = 0',
        'orders(within="60d").count = 0 and last_order_at < ago("60d")',
        'orders(channel="douyin", store="SH01", within="90d").sum >= 500.5',
        'categories contains "奶茶" or attr.会员等级 = "金卡"',
        "a = 1 and (b = 2 and c = 3)",
        "not not has(wecom_external_userid)",
        "all",
        "none or birthday = null",
        "order_count >= -1.5e3",
    ],
)
def test_text_json_text_round_trips(text: str) -> None:
    rule = parse(text)
    document = json.loads(json.dumps(rule_to_json(rule)))
    assert rule_from_json(document) == rule
    assert to_text(rule_from_json(document)) == to_text(rule)
    assert parse(to_text(rule)) == rule


def test_json_shape_is_a_typed_tree() -> None:
    assert rule_to_json(parse('not tag("VIP") or orders(within="30d").sum > 10')) == {
        "type": "or",
        "rules": [
            {"type": "not", "rule": {"type": "tag", "tag": "VIP"}},
            {"type": "orders", "within": "30d", "measure": "sum", "op": ">", "value": 10},
        ],
    }
    assert rule_to_json(parse('last_order_at < ago("7d")'))["value"] == {"ago": "7d"}


def test_one_child_groups_read_back_as_their_child() -> None:
    nested = And((Or((HasTag("a"), HasTag("b"))),))
    assert to_text(nested) == '(tag("a") or tag("b"))'
    assert parse(to_text(nested)) == normalize(nested) == Or((HasTag("a"), HasTag("b")))
    assert parse(to_text(Not(And((HasTag("a"),))))) == Not(HasTag("a"))


# --- generated trees --------------------------------------------------------------------------------

_names = st.sampled_from(
    ["city", "name", "order_count", "attr.level", "attr.会员", "last_order_at", "rfm.layer"]
)
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    _text,
)
_values = st.one_of(
    _scalars, st.tuples(_scalars, _scalars), st.builds(Ago, st.sampled_from(["30d", "12h", "2w"]))
)
_ops = st.sampled_from(["=", "!=", ">", ">=", "<", "<="])
_numbers = st.one_of(st.integers(0, 1000), st.floats(0, 1000, allow_nan=False, width=32))
_optional = st.one_of(st.none(), _text)
_leaves: st.SearchStrategy[Rule] = st.one_of(
    st.builds(Compare, _names, st.sampled_from(["=", "!=", ">", ">=", "<", "<=", "contains"]), _values),
    st.builds(Compare, _names, st.just("in"), st.tuples(_scalars, _scalars)),
    st.builds(HasTag, _text),
    st.builds(HasIdentity, st.sampled_from(["phone", "wecom_external_userid", "member_card"])),
    st.builds(HasConsent, _text, _text),
    st.builds(
        OrderMeasure,
        st.sampled_from(["count", "sum"]),
        _ops,
        _numbers,
        category=_optional,
        channel=_optional,
        store=_optional,
        within=_optional,
    ),
    st.builds(EventMeasure, st.just("count"), _ops, _numbers, type=_optional, within=_optional),
    st.builds(InSegment, _text),
)
rules: st.SearchStrategy[Rule] = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.builds(Not, children),
        st.builds(And, st.lists(children, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(children, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules)
def test_generated_trees_round_trip_through_both_forms(rule: Rule) -> None:
    text = to_text(rule)
    assert parse(text) == rule, text
    assert to_text(parse(text)) == text
    assert rule_from_json(json.loads(json.dumps(rule_to_json(rule), ensure_ascii=False))) == rule


# --- errors -----------------------------------------------------------------------------------------


def _error(source: str | dict) -> RuleError:  # type: ignore[type-arg]
    with pytest.raises(RuleError) as caught:
        fields.check(parse(source) if isinstance(source, str) else rule_from_json(source))
    return caught.value


@pytest.mark.parametrize(
    ("text", "message", "line", "column", "hint"),
    [
        ('citty = "上海"', "unknown field 'citty'", 1, 1, "did you mean 'city'?"),
        (
            'city = "上海" and\n  ordres(within="30d").count > 1',
            "unknown condition ordres()",
            2,
            3,
            "'orders'",
        ),
        ('orders(categroy="奶茶").count > 1', "no argument 'categroy'", 1, 8, "did you mean 'category'?"),
        ('orders(within="30d").cuont > 1', "no measure 'cuont'", 1, 22, "did you mean 'count'?"),
        ("city = '上海'", "unexpected character", 1, 8, "double quotes"),
        ('tag("VIP") and (order_count > 1', "ends too early", 1, 32, "')'"),
        ('tag("VIP") and and', "unexpected 'and'", 1, 16, None),
        ('city = 上海 and tag("x")', "unexpected 'and'", 1, 11, "double quotes"),
        (
            'order_count >= 1 and\n\nlast_orde_at < ago("7d")',
            "unknown field 'last_orde_at'",
            3,
            1,
            "'last_order_at'",
        ),
        ('city > "上海"', "cannot be compared with '>'", 1, 1, "=, !=, in"),
        ('gender = "men"', 'never "men"', 1, 1, '"male"'),
        ('last_order_at = "2026-01-01"', "almost never true", 1, 1, "= null"),
        ('last_order_at < ago("30 days")', "not a duration", 1, 1, '"30d"'),
        ('consent(channel="sns")', "unknown contact channel 'sns'", 1, 1, "did you mean 'sms'?"),
        ('rfm.layer = "重要客户"', 'rfm.layer is never "重要客户"', 1, 1, "重要挽留"),
        ('lifecycle = "sleeping"', 'never "sleeping"', 1, 1, '"dormant"'),
        ("orders().count", "ends too early", 1, 15, None),
        ('net_revenue >= "500"', "compared with a number", 1, 1, "yuan"),
        ('x = foo("1")', "unknown value foo()", 1, 5, None),
        ("tag(VIP)", "takes a quoted string", 1, 5, None),
    ],
)
def test_errors_name_position_and_suggest(
    text: str, message: str, line: int, column: int, hint: str | None
) -> None:
    error = _error(text)
    assert message in error.message, error
    assert error.details == {"line": line, "column": column}, error
    assert error.where == f"line {line}, column {column}"
    if hint:
        assert hint in (error.hint or ""), error


def test_json_errors_name_their_path() -> None:
    error = _error(
        {"type": "and", "rules": [{"type": "tag", "tag": "VIP"}, {"type": "feild", "field": "city"}]}
    )
    assert error.where == "rule.rules[1].type" and "did you mean 'field'?" in (error.hint or "")
    error = _error({"type": "or", "rules": [{"type": "field", "field": "citi", "op": "=", "value": "上海"}]})
    assert error.where == "rule.rules[0]" and "did you mean 'city'?" in (error.hint or "")
    error = _error({"type": "orders", "measure": "count", "op": ">=", "value": "2"})
    assert error.where == "rule.value"
    error = _error({"type": "not"})
    assert "needs rule" in error.message


def test_what_could_match_everyone_or_no_one_is_flagged() -> None:
    assert fields.warnings(parse("order_count >= 0")) == ["this rule matches every customer"]
    assert fields.warnings(parse('tag("a") or not tag("a")')) == ["this rule matches every customer"]
    assert fields.warnings(parse('city = "x" or city != "x"')) == ["this rule matches every customer"]
    assert fields.warnings(parse("all")) == ["this rule matches every customer"]
    assert fields.warnings(parse('not (orders(within="30d").count < 0)')) == [
        "this rule matches every customer"
    ]
    assert fields.warnings(parse('city = "x" and not city = "x"')) == ["this rule matches no customer"]
    assert fields.warnings(parse('orders(within="30d").sum < 0 or none')) == ["this rule matches no customer"]
    assert fields.warnings(parse('tag("a") and order_count >= 1')) == []
    assert fields.warnings(parse('orders(within="30d").count = 0')) == []


def test_thresholds_on_whole_numbers_are_exact() -> None:
    assert integer_threshold(">=", 500, 100) == (">=", 50000)
    assert integer_threshold(">=", 99.995, 100) == (">=", 10000)
    assert integer_threshold(">", 99.995, 100) == (">", 9999)
    assert integer_threshold("<", 1.5, 1) == ("<", 2)
    assert integer_threshold("<=", 1.5, 1) == ("<=", 1)
    assert integer_threshold("=", 1.5, 1) is False
    assert integer_threshold("!=", 1.5, 1) is True
    assert integer_threshold("=", 0.1 + 0.2, 100) is False  # 30.000000000000004 cents: no whole amount
