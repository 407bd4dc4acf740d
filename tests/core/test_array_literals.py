"""`among` sends the values of a PostgreSQL `= ANY(array)` as one array literal (integer_array,
text_array): any string, however it is spelt, must come back as itself, and only what was asked for."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, insert, select

from siyu.core.db import Database, among, integer_array, text_array

metadata = MetaData()
probe = Table("array_literal_probe", metadata, Column("id", Integer, primary_key=True), Column("v", String))

# no NUL (PostgreSQL text cannot hold one) and no lone surrogate (no UTF-8 for it)
strings = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)


@pytest.fixture
def table(db: Database):  # type: ignore[no-untyped-def]
    metadata.create_all(db.engine)
    yield probe
    metadata.drop_all(db.engine)


@pytest.mark.postgres
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=st.lists(strings, max_size=8, unique=True), asked=st.lists(strings, max_size=8))
def test_any_string_is_found_as_itself(
    table: Table, db: Database, stored: list[str], asked: list[str]
) -> None:
    with db.transaction() as session:
        session.execute(delete(table))
        if stored:
            session.execute(insert(table), [{"id": i, "v": v} for i, v in enumerate(stored)])
        found = set(
            session.scalars(select(table.c.v).where(among(session, table.c.v, [*asked, *stored[:2]])))
        )
        ids = set(session.scalars(select(table.c.id).where(among(session, table.c.id, [0, 2, 10**9]))))
    assert found == set(stored) & {*asked, *stored[:2]}
    assert ids == {i for i in (0, 2) if i < len(stored)}


def test_the_literals() -> None:
    assert integer_array([3, 1, 2]) == "{3,1,2}"
    assert integer_array([]) == "{}"
    assert text_array(['a"b', "c\\d", "", "NULL", "{x,y}"]) == '{"a\\"b","c\\\\d","","NULL","{x,y}"}'
    assert text_array(["NULL", None]) == '{"NULL",NULL}'  # only None is SQL NULL
    with pytest.raises(TypeError):
        integer_array(["1); DROP TABLE customer; --"])  # type: ignore[list-item]
