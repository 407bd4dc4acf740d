"""The UTC datetime column: aware values round-trip as UTC on both engines; naive values are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from siyu.core.db import Database
from siyu.workspaces.models import Workspace


def test_aware_times_round_trip_as_utc(db: Database, workspace_id: int) -> None:
    shanghai = timezone(timedelta(hours=8))
    with db.transaction() as session:
        ws = session.get(Workspace, workspace_id)
        assert ws is not None
        ws.created_at = datetime(2024, 3, 5, 14, 3, tzinfo=shanghai)
    with db.reader() as session:
        ws = session.get(Workspace, workspace_id)
        assert ws is not None
        assert ws.created_at == datetime(2024, 3, 5, 6, 3, tzinfo=UTC)
        assert ws.created_at.tzinfo is not None


def test_naive_times_are_refused(db: Database, workspace_id: int) -> None:
    with pytest.raises(StatementError, match="naive datetime"), db.transaction() as session:
        ws = session.get(Workspace, workspace_id)
        assert ws is not None
        ws.created_at = datetime(2024, 3, 5, 14, 3)
        session.flush()


def _mode(session: Session) -> tuple[bool, bool]:
    """(autocommit, mmap on) of the connection the session runs on."""
    driver = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql":
        return bool(driver.autocommit), False
    return False, driver.execute("PRAGMA mmap_size").fetchone()[0] > 0


def test_reads_without_a_snapshot_skip_the_transaction_round_trips_on_postgres(db: Database) -> None:
    with db.session(write=False, snapshot=False) as session:
        autocommit, mmap = _mode(session)
        assert session.execute(text("select 1")).scalar() == 1
    # PostgreSQL: autocommit, no BEGIN/COMMIT; SQLite: a deferred read transaction, pages memory-mapped
    assert autocommit == db.is_postgres
    assert mmap == (not db.is_postgres)
    with db.reader() as session:  # a reader keeps one snapshot
        assert _mode(session)[0] is False
    with db.transaction() as session:
        assert _mode(session)[0] is False  # the pool reset the connection it lent in autocommit


def test_a_writing_session_keeps_its_transaction(db: Database) -> None:
    with pytest.raises(ValueError, match="snapshot=True"):
        db.session(write=True, snapshot=False)


def test_a_read_request_sees_writes_committed_while_it_runs(db: Database, workspace_id: int) -> None:
    with db.session(write=False, snapshot=False) as reader:
        before = reader.get(Workspace, workspace_id)
        assert before is not None
        reader.expunge_all()
        with db.transaction() as writer:
            ws = writer.get(Workspace, workspace_id)
            assert ws is not None
            ws.name = "renamed while a read ran"
        after = reader.get(Workspace, workspace_id)
        assert after is not None
        if db.is_postgres:  # autocommit: each statement sees the latest committed data
            assert after.name == "renamed while a read ran"
