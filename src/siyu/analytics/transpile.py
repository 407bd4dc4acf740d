"""PostgreSQL statements as Spark SQL: the SQL SQLAlchemy compiles for PostgreSQL, its parameters made
literals and the whole transpiled by sqlglot, with the few PostgreSQL forms Spark lacks rewritten."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp

from siyu.core.errors import ValidationFailed

_MICROS_PER_SECOND = exp.Literal.number("1e6")  # a DOUBLE in Spark SQL (1000000.0 would be a DECIMAL)


def _literal(value: Any) -> exp.Expression:
    """A bound value as a Spark SQL literal; times as UTC instants."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(repr(value) if isinstance(value, float) else str(value))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationFailed(f"naive time {value!r} in an analytic statement", where="parameters")
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return exp.cast(exp.Literal.string(f"{text}+00:00"), exp.DataType.build("timestamp"))
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("date"))
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise ValidationFailed(f"cannot pass a {type(value).__name__} to Spark SQL", where="parameters")


def _call(name: str, *arguments: Any) -> exp.Expression:
    """A call of a Spark SQL function by its name."""
    return exp.Anonymous(this=name, expressions=list(arguments))


def _epoch_seconds(value: exp.Expression) -> exp.Expression:
    """Seconds since 1970 of a timestamp, or the seconds of a difference of two timestamps, as DOUBLE:
    Spark can EXTRACT neither an epoch nor a field of the interval a subtraction of timestamps gives."""
    inner = value.unnest()
    if isinstance(inner, exp.Sub):
        later, earlier = inner.left, inner.right
        micros: exp.Expression = exp.Sub(
            this=_call("unix_micros", later), expression=_call("unix_micros", earlier)
        )
    else:
        micros = _call("unix_micros", inner)
    return exp.Paren(this=exp.Div(this=exp.Paren(this=micros), expression=_MICROS_PER_SECOND.copy()))


def _epochs(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Extract) and node.this.name.lower() == "epoch":
        return _epoch_seconds(node.expression)
    return node


def _wall_clocks(node: exp.Expression) -> exp.Expression:
    # PostgreSQL's timezone(zone, instant): the wall-clock time of the instant in that zone
    if isinstance(node, exp.Anonymous) and node.name.lower() == "timezone" and len(node.expressions) == 2:
        zone, instant = node.expressions
        return _call("from_utc_timestamp", instant, zone)
    if isinstance(node, exp.AtTimeZone):
        return _call("from_utc_timestamp", node.this, node.args["zone"])
    return node


def to_spark_sql(statement: str, parameters: Mapping[str, Any] | None = None) -> str:
    """Spark SQL for a statement compiled for PostgreSQL with named parameters (`:name`)."""
    tree = sqlglot.parse_one(statement, read="postgres")
    values = dict(parameters or {})

    def bind(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name:
            if node.name not in values:
                raise ValidationFailed(f"no value for the parameter {node.name!r}", where="parameters")
            return _literal(values[node.name])
        return node

    # one pass per rewrite: a pass does not descend into the node it has just replaced
    tree = tree.transform(bind).transform(_wall_clocks).transform(_epochs)
    return tree.sql(dialect="spark")
