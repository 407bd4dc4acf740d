"""A rule compiled to one SQLAlchemy Core selectable of customer ids, evaluated inside the database.

`compile_rule` gives `SELECT customer.id … WHERE <workspace, live> AND <rule>`. Every condition compiles
to a boolean that is never NULL (a missing value makes a comparison false, and `not` of it true), so
`not`, `and` and `or` mean what they say. Relative windows are computed from the `now` passed in. The
live-membership work adds `customer.id = :id` to the same selectable to re-evaluate one customer.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.channels import service as channels
from siyu.clv import service as clv
from siyu.core.timeutil import as_utc
from siyu.customers import service as customers
from siyu.events import service as events
from siyu.lifecycle import service as lifecycle
from siyu.orders import service as orders
from siyu.rfm import service as rfm
from siyu.segments import fields, sql
from siyu.segments.fields import Kind, integer_threshold
from siyu.segments.models import Segment
from siyu.segments.rules import (
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
    duration_hours,
    rule_from_json,
)
from siyu.tags import service as tags
from siyu.workspaces import service as workspaces

COLUMNS = customers.RULE_COLUMNS


def _compare(left: Any, op: str, right: Any) -> Any:
    match op:
        case "=":
            return left == right
        case "!=":
            return left != right
        case ">":
            return left > right
        case ">=":
            return left >= right
        case "<":
            return left < right
        case "<=":
            return left <= right
    raise ValueError(op)


def _known(column: Any, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """A comparison that is false, not NULL, where the value is missing."""
    return and_(column.is_not(None), condition)


@dataclass
class _Lookups:
    """What a rule names, resolved once per compilation through the owning domains' services."""

    session: Session
    workspace_id: int
    _cache: dict[str, Any] = field(default_factory=dict)

    def _get(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def zone(self) -> ZoneInfo:
        return self._get(
            "zone",
            lambda: ZoneInfo(workspaces.get_workspace(self.session, workspace_id=self.workspace_id).timezone),
        )

    def tags(self) -> list[tuple[int, str, str]]:
        return self._get("tags", lambda: tags.tag_names(self.session, workspace_id=self.workspace_id))

    def channel_spellings(self) -> dict[str, str]:
        return self._get(
            "channels", lambda: channels.channel_aliases(self.session, workspace_id=self.workspace_id)
        )

    def channel_ids(self) -> dict[str, int]:
        return self._get(
            "channel_ids", lambda: channels.channel_ids(self.session, workspace_id=self.workspace_id)
        )

    def stores(self) -> dict[str, int]:
        return self._get("stores", lambda: channels.store_codes(self.session, workspace_id=self.workspace_id))

    def members(self) -> dict[str, int]:
        return self._get(
            "members", lambda: auth.member_ids_by_email(self.session, workspace_id=self.workspace_id)
        )

    def identity_kinds(self) -> set[str]:
        return self._get(
            "kinds", lambda: customers.identity_kinds_in_use(self.session, workspace_id=self.workspace_id)
        )

    def segment(self, name: str) -> Segment | None:
        return self._get(
            f"segment:{name}",
            lambda: (
                self.session.query(Segment)
                .filter(Segment.workspace_id == self.workspace_id, Segment.name == name)
                .one_or_none()
            ),
        )

    def segment_names(self) -> list[str]:
        return self._get(
            "segment_names",
            lambda: list(
                self.session.scalars(
                    select(Segment.name).where(
                        Segment.workspace_id == self.workspace_id, Segment.deleted_at.is_(None)
                    )
                )
            ),
        )


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


class _Compiler:
    def __init__(self, session: Session, *, workspace_id: int, now: datetime, stack: tuple[str, ...]) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.workspace_id = workspace_id
        self.now = now
        self.lookups = _Lookups(session, workspace_id)
        self.stack = stack  # names of the segments being compiled, outermost first (cycles)

    # --- groups ---

    def condition(self, rule: Rule) -> ColumnElement[bool]:
        match rule:
            case And(rules=rules):
                return and_(true(), *(self.condition(r) for r in rules)) if rules else true()
            case Or(rules=rules):
                return or_(false(), *(self.condition(r) for r in rules)) if rules else false()
            case Not(rule=inner):
                return not_(self.condition(inner))
            case Compare():
                return self._field(rule)
            case HasTag():
                return COLUMNS.customer_id.in_(
                    tags.customer_ids_with_tags(self.workspace_id, self._tag_ids(rule))
                )
            case HasIdentity():
                return COLUMNS.customer_id.in_(
                    customers.customer_ids_with_identity(self.workspace_id, self._kind(rule))
                )
            case HasConsent():
                return COLUMNS.customer_id.in_(
                    customers.customer_ids_with_consent(
                        self.workspace_id, contact_channel=rule.channel, purpose=rule.purpose
                    )
                )
            case OrderMeasure():
                return self._orders(rule)
            case EventMeasure():
                return self._events(rule)
            case InSegment():
                return self._segment(rule)
        raise TypeError(f"not a rule node: {rule!r}")

    # --- values ---

    def _time(self, value: Scalar | Ago, at: Location | None) -> datetime:
        if isinstance(value, Ago):
            return self.now - timedelta(hours=duration_hours(value.duration, at=at))
        assert isinstance(value, str)
        parsed = fields.parse_time(value, at=at)
        zone = str(self.lookups.zone())
        if isinstance(parsed, datetime):
            return as_utc(parsed, zone)
        return as_utc(datetime.combine(parsed, time()), zone)

    def _channel_id(self, spelling: str, at: Location | None) -> int:
        key = self.lookups.channel_spellings().get(spelling.strip().lower())
        if key is None:
            known = sorted(set(self.lookups.channel_spellings().values()))
            raise RuleError(
                f"no channel is called {spelling!r}",
                at=at,
                hint=_suggest(spelling, known)
                + ("channels: " + ", ".join(known) if known else "there are no channels yet"),
            )
        return self.lookups.channel_ids()[key]

    def _owner_id(self, value: str | int, at: Location | None) -> int:
        members = self.lookups.members()
        if isinstance(value, int):
            if value not in members.values():
                raise RuleError(f"user {value} is not a member of this workspace", at=at)
            return value
        found = members.get(value.strip().lower())
        if found is None:
            raise RuleError(
                f"no member has the email {value!r}", at=at, hint=_suggest(value.lower(), sorted(members))
            )
        return found

    # --- fields ---

    def _equal(self, column: Any, value: Any) -> ColumnElement[bool]:
        return column.is_(None) if value is None else _known(column, column == value)

    def _field(self, rule: Compare) -> ColumnElement[bool]:
        spec = fields.field_of(rule.field, at=rule.at)
        if spec.kind is Kind.ATTRIBUTE:
            return self._attribute(spec.column, rule)
        if spec.kind is Kind.LIST:
            column = COLUMNS.rollup[spec.column]
            assert isinstance(rule.value, str)
            return _known(column, sql.json_array_contains(column, rule.value))
        if spec.kind in (Kind.SCORE, Kind.LAYER):
            return self._score(spec.column, rule)
        column = COLUMNS.profile.get(spec.column) or COLUMNS.rollup[spec.column]
        if spec.kind in (Kind.COUNT, Kind.MONEY):
            return self._number(func.coalesce(column, 0), rule, 100 if spec.kind is Kind.MONEY else 1)

        def convert(value: Any) -> Any:
            if value is None:
                return None
            if spec.kind is Kind.CHANNEL:
                return self._channel_id(value, rule.at)
            if spec.kind is Kind.OWNER:
                return self._owner_id(value, rule.at)
            if spec.kind is Kind.DATE:
                return date.fromisoformat(value)
            if spec.kind is Kind.TIME:
                return self._time(value, rule.at)
            return value

        if rule.op == "in":
            assert isinstance(rule.value, tuple)
            return or_(false(), *(self._equal(column, convert(v)) for v in rule.value))
        value = convert(rule.value)
        if rule.op in ("=", "!="):
            equal = self._equal(column, value)
            return equal if rule.op == "=" else not_(equal)
        return _known(column, _compare(column, rule.op, value))

    def _score(self, name: str, rule: Compare) -> ColumnElement[bool]:
        # a score of the last scoring run (CLV or RFM), "source:column". A customer the run did not
        # score has no value: "= null" finds them and every comparison is false for them (so `not`,
        # the complement, includes them), as for other fields
        source, column_name = name.split(":", 1)
        scores = {"clv": clv.score_column, "rfm": rfm.rfm_column, "lifecycle": lifecycle.stage_column}[source]
        column = scores(column_name, customer_id=COLUMNS.customer_id)
        if rule.op == "in":
            assert isinstance(rule.value, tuple)
            return or_(false(), *(self._equal(column, v) for v in rule.value))
        if rule.value is None:
            missing = column.is_(None)
            return missing if rule.op == "=" else not_(missing)
        if rule.op in ("=", "!=") and isinstance(rule.value, str):
            equal = self._equal(column, rule.value)
            return equal if rule.op == "=" else not_(equal)
        if column_name == "clv_cents":  # yuan in the rule, whole cents in the table
            return _known(column, self._number(column, rule, 100))
        assert isinstance(rule.value, int | float)
        return _known(column, _compare(column, rule.op, rule.value))

    def _number(self, column: ColumnElement[Any], rule: Compare, scale: int) -> ColumnElement[bool]:
        values = rule.value if isinstance(rule.value, tuple) else (rule.value,)
        op = "=" if rule.op == "in" else rule.op
        parts = []
        for value in values:
            assert isinstance(value, int | float)
            threshold = integer_threshold(op, value, scale)
            if isinstance(threshold, bool):
                parts.append(true() if threshold else false())
            else:
                parts.append(_compare(column, *threshold))
        return or_(false(), *parts) if rule.op == "in" else parts[0]

    def _attribute(self, key: str, rule: Compare) -> ColumnElement[bool]:
        document = COLUMNS.attributes

        def equal(value: Scalar) -> ColumnElement[bool]:
            if value is None:
                return func.coalesce(sql.json_type(document, key), "null") == "null"
            if isinstance(value, bool):
                flag = sql.json_bool(document, key)
                return _known(flag, flag == int(value))
            if isinstance(value, int | float):
                number = sql.json_number(document, key)
                return _known(number, number == value)
            text = sql.json_text(document, key)
            return _known(text, text == value)

        if rule.op == "in":
            assert isinstance(rule.value, tuple)
            return or_(false(), *(equal(v) for v in rule.value))
        if rule.op in ("=", "!="):
            assert not isinstance(rule.value, tuple | Ago)
            return equal(rule.value) if rule.op == "=" else not_(equal(rule.value))
        number = sql.json_number(document, key)
        return _known(number, _compare(number, rule.op, rule.value))

    # --- conditions on other tables ---

    def _tag_ids(self, rule: HasTag) -> list[int]:
        known = self.lookups.tags()
        if "/" in rule.tag:
            group, _, name = rule.tag.partition("/")
            ids = [id_ for id_, g, n in known if g == group.strip() and n == name.strip()]
        else:
            ids = [id_ for id_, _, n in known if n == rule.tag.strip()]
        if not ids:
            choices = [n for _, _, n in known] + [f"{g}/{n}" for _, g, n in known]
            raise RuleError(
                f"no tag is called {rule.tag!r}",
                at=rule.at,
                hint=_suggest(rule.tag, choices) + "create it on the tags page, or check the spelling",
            )
        return ids

    def _kind(self, rule: HasIdentity) -> str:
        if rule.kind in customers.BUILTIN_IDENTITY_KINDS or rule.kind in self.lookups.identity_kinds():
            return rule.kind
        choices = sorted({*customers.BUILTIN_IDENTITY_KINDS, *self.lookups.identity_kinds()})
        raise RuleError(
            f"no customer holds an identity of kind {rule.kind!r}",
            at=rule.at,
            hint=_suggest(rule.kind, choices) + "kinds: " + ", ".join(choices),
        )

    def _window(self, within: str | None, at: Location | None) -> tuple[datetime | None, datetime | None]:
        if within is None:
            return None, None
        return self.now - timedelta(hours=duration_hours(within, at=at)), self.now

    def _measured(
        self, aggregate: Select[Any], op: str, value: int | float, scale: int
    ) -> ColumnElement[bool]:
        """A comparison of a per-customer aggregate, where customers without rows count as 0: those are
        kept out with IN when 0 fails the comparison, and kept in with NOT IN when 0 passes it."""
        threshold = integer_threshold(op, value, scale)
        if isinstance(threshold, bool):
            return true() if threshold else false()
        op, bound = threshold
        rows = aggregate.subquery()
        if _compare(0, op, bound):
            failing = select(rows.c.customer_id).where(not_(_compare(rows.c.value, op, bound)))
            return COLUMNS.customer_id.not_in(failing)
        passing = select(rows.c.customer_id).where(_compare(rows.c.value, op, bound))
        return COLUMNS.customer_id.in_(passing)

    def _orders(self, rule: OrderMeasure) -> ColumnElement[bool]:
        after, until = self._window(rule.within, rule.at)
        store_id = None
        if rule.store is not None:
            store_id = self.lookups.stores().get(rule.store) or self.lookups.stores().get(rule.store.lower())
            if store_id is None:
                # store_codes holds each code as written and lower-cased: suggest as written
                written = {id_: c for c, id_ in self.lookups.stores().items() if c != c.lower()}
                codes = sorted({written.get(id_, c) for c, id_ in self.lookups.stores().items()})
                by_lower = {c.lower(): c for c in codes}
                close = difflib.get_close_matches(rule.store.lower(), list(by_lower), n=1, cutoff=0.5)
                raise RuleError(
                    f"no store has the code {rule.store!r}",
                    at=rule.at,
                    hint=(f"did you mean {by_lower[close[0]]!r}? " if close else "")
                    + "codes: "
                    + ", ".join(codes),
                )
        aggregate = orders.order_measure_by_customer(
            self.workspace_id,
            measure=rule.measure,
            category=rule.category,
            channel_id=None if rule.channel is None else self._channel_id(rule.channel, rule.at),
            store_id=store_id,
            placed_after=after,
            placed_until=until,
        )
        return self._measured(aggregate, rule.op, rule.value, 100 if rule.measure == "sum" else 1)

    def _events(self, rule: EventMeasure) -> ColumnElement[bool]:
        after, until = self._window(rule.within, rule.at)
        aggregate = events.event_count_by_customer(
            self.workspace_id, type=rule.type, occurred_after=after, occurred_until=until
        )
        return self._measured(aggregate, rule.op, rule.value, 1)

    def _segment(self, rule: InSegment) -> ColumnElement[bool]:
        name = rule.segment
        if name in self.stack:
            chain = " → ".join((*self.stack[self.stack.index(name) :], name))
            raise RuleError(f"segments refer to each other in a circle: {chain}", at=rule.at)
        segment = self.lookups.segment(name)
        if segment is None:
            raise RuleError(
                f"no segment is called {name!r}",
                at=rule.at,
                hint=_suggest(name, self.lookups.segment_names()),
            )
        if segment.deleted_at is not None:
            raise RuleError(
                f"segment {name!r} was deleted on {segment.deleted_at:%Y-%m-%d}",
                at=rule.at,
                hint="remove the condition, or restore that segment",
            )
        inner = rule_from_json(segment.rule, f"segment {name!r}")
        self.stack = (*self.stack, name)
        try:
            return self.condition(inner)
        finally:
            self.stack = self.stack[:-1]


def rule_condition(
    session: Session, *, workspace_id: int, rule: Rule, now: datetime, within_segment: str | None = None
) -> ColumnElement[bool]:
    """The rule as a boolean condition on the row of `customers.live_customer_ids` (customer + rollup).

    `within_segment`: the name of the segment this rule belongs to, so that a reference back to it is
    reported as a circle.
    """
    fields.check(rule)
    stack = (within_segment,) if within_segment else ()
    return _Compiler(session, workspace_id=workspace_id, now=now, stack=stack).condition(rule)


def compile_rule(
    session: Session, *, workspace_id: int, rule: Rule, now: datetime, within_segment: str | None = None
) -> Select[tuple[int]]:
    """One selectable of the ids of the workspace's live customers the rule matches at `now`."""
    condition = rule_condition(
        session, workspace_id=workspace_id, rule=rule, now=now, within_segment=within_segment
    )
    return customers.live_customer_ids(workspace_id).where(condition)
