"""The shared outbox reader with a type filter: a read that found less than its limit moves past the
later events of other types (an idle consumer of a few types does not scan them again); a full read
stops at its last event, so nothing of its types is passed over."""

from __future__ import annotations

from siyu.core import domain_events
from siyu.core.db import Database


def _record(db: Database, workspace_id: int, *types: str) -> None:
    with db.transaction() as session:
        for type_ in types:
            domain_events.record(session, workspace_id=workspace_id, type=type_, customer_id=None)


def _read(db: Database, workspace_id: int, limit: int) -> tuple[list[str], domain_events.Position]:
    with db.transaction() as session:
        batch = domain_events.read_after(
            session, consumer="test.typed", workspace_id=workspace_id, limit=limit, types=["a.x"]
        )
        domain_events.advance(
            session, consumer="test.typed", workspace_id=workspace_id, position=batch.position
        )
        return [e.type for e in batch.events], batch.position


def _last(db: Database, workspace_id: int) -> domain_events.Position:
    with db.reader() as session:
        batch = domain_events.read_after(session, consumer="test.all", workspace_id=workspace_id, limit=1000)
        return batch.position


def test_a_typed_read_moves_past_other_types(db: Database, workspace_id: int) -> None:
    _record(db, workspace_id, "a.x", "b.y", "b.y")
    types, position = _read(db, workspace_id, limit=10)
    assert types == ["a.x"] and position == _last(db, workspace_id)  # past both b.y
    assert _read(db, workspace_id, limit=10) == ([], position)
    _record(db, workspace_id, "a.x", "a.x", "b.y")
    types, first = _read(db, workspace_id, limit=1)
    assert types == ["a.x"] and first < _last(db, workspace_id)  # a full read stops at its own event
    types, position = _read(db, workspace_id, limit=1)
    assert types == ["a.x"] and first < position < _last(db, workspace_id)
    assert _read(db, workspace_id, limit=1) == ([], _last(db, workspace_id))
