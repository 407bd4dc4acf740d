"""The UTC datetime column: aware values round-trip as UTC on both engines; naive values are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

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
