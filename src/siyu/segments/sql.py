"""SQL constructs rules need that SQLite and PostgreSQL spell differently: typed reads of a custom
attribute out of a JSON document, and membership of a value in a JSON array."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Numeric, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


# lower-case class names: these read as SQL functions where they are used
class _JsonAttribute(FunctionElement[Any]):
    """One key of a JSON object column, read as one JSON type: NULL when missing or of another type."""

    inherit_cache = True

    def __init__(self, column: Any, key: str) -> None:
        # keys are checked names (letters, digits, underscores): the SQLite path needs no escaping
        super().__init__(column, literal(key, String()), literal(f'$."{key}"', String()))


class json_text(_JsonAttribute):
    type = String()
    name = "json_text"
    inherit_cache = True


class json_number(_JsonAttribute):
    type = Numeric()
    name = "json_number"
    inherit_cache = True


class json_bool(_JsonAttribute):
    """1 for true, 0 for false."""

    type = Integer()
    name = "json_bool"
    inherit_cache = True


class json_type(_JsonAttribute):
    """The JSON type name ('null' for a JSON null), NULL when the key is missing."""

    type = String()
    name = "json_type"
    inherit_cache = True


class json_array_contains(FunctionElement[bool]):
    """A JSON array column holds this string (false for a NULL column)."""

    inherit_cache = True
    name = "json_array_contains"

    def __init__(self, column: Any, value: str) -> None:
        super().__init__(column, literal(value, String()))


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(json_text, "sqlite")
def _text_sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, path = _args(element, compiler, **kw)
    return f"CASE WHEN json_type({column}, {path}) = 'text' THEN json_extract({column}, {path}) END"


@compiles(json_text, "postgresql")
def _text_pg(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _ = _args(element, compiler, **kw)
    return f"CASE WHEN jsonb_typeof({column} -> {key}) = 'string' THEN {column} ->> {key} END"


@compiles(json_number, "sqlite")
def _number_sqlite(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, path = _args(element, compiler, **kw)
    return f"CASE WHEN json_type({column}, {path}) IN ('integer', 'real') THEN json_extract({column}, {path}) END"


@compiles(json_number, "postgresql")
def _number_pg(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _ = _args(element, compiler, **kw)
    return (
        f"CASE WHEN jsonb_typeof({column} -> {key}) = 'number' THEN CAST({column} ->> {key} AS NUMERIC) END"
    )


@compiles(json_bool, "sqlite")
def _bool_sqlite(element: json_bool, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, path = _args(element, compiler, **kw)
    return f"CASE json_type({column}, {path}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"


@compiles(json_bool, "postgresql")
def _bool_pg(element: json_bool, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _ = _args(element, compiler, **kw)
    return (
        f"CASE WHEN jsonb_typeof({column} -> {key}) = 'boolean' "
        f"THEN CASE WHEN {column} ->> {key} = 'true' THEN 1 ELSE 0 END END"
    )


@compiles(json_type, "sqlite")
def _type_sqlite(element: json_type, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, path = _args(element, compiler, **kw)
    return f"json_type({column}, {path})"


@compiles(json_type, "postgresql")
def _type_pg(element: json_type, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _ = _args(element, compiler, **kw)
    return f"jsonb_typeof({column} -> {key})"


@compiles(json_array_contains, "sqlite")
def _contains_sqlite(element: json_array_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = _args(element, compiler, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value})"


@compiles(json_array_contains, "postgresql")
def _contains_pg(element: json_array_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = _args(element, compiler, **kw)
    return f"coalesce({column} @> jsonb_build_array(CAST({value} AS TEXT)), false)"
