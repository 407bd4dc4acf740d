"""`siyu serve` runs one reach worker in the app's process: started with the app, stopped with it."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.core.db import Database
from siyu.reach import service
from siyu.reach.models import ReachMessage
from siyu.web.app import create_app
from tests.reach.conftest import reachable


@pytest.fixture
def db(own_db: Database) -> Database:
    """This test's worker serves every workspace: it gets a database of its own."""
    return own_db


def test_the_app_runs_a_worker_and_stops_it(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
        service.send(
            session, workspace_id=workspace_id, source="api", source_ref="serve", customer_ids=[customer],
            content={"sms": {"text": "x"}}, purpose="transactional", channel_preference=["sms"],
        )  # fmt: skip
    status = None
    with TestClient(create_app(db, run_worker=True)):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status != "sent":
            with db.reader() as session:
                status = session.scalar(
                    select(ReachMessage.status).where(ReachMessage.workspace_id == workspace_id)
                )
            time.sleep(0.05)
    assert status == "sent"  # the log sink took it: the outbox viewer shows it
    assert not [t for t in threading.enumerate() if t.name in ("reach-worker", "scheduler")]
