"""Crash safety with a real kill: `siyu worker` processes send a 10k broadcast to a webhook receiver;
the first is killed with SIGKILL mid-way, a second one finishes. The receiver gets every message, a
message recorded as sent before the kill is never sent again, none is marked sent without a send, and
the only repeats are the few that were in flight at the kill (the receiver dedups them by key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.customers.models import Customer
from siyu.reach import service
from siyu.reach.models import ReachMessage


@pytest.fixture
def db(own_db: Database) -> Database:
    """This test's worker serves every workspace: it gets a database of its own."""
    return own_db


COUNT = int(os.environ.get("SIYU_CRASH_COUNT", "10000"))
BATCH = 20
SECRET = "crash-secret"


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per worker
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart
    keys: list[tuple[int, str]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.keys.append((body["workspace_id"], self.headers["Idempotency-Key"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.keys = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _worker(db: Database, url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": db.url,
        "SIYU_REACH_CHANNELS": json.dumps({"webhook": "webhook"}),
        "SIYU_REACH_WEBHOOK_URL": url,
        "SIYU_REACH_WEBHOOK_SECRET": SECRET,
        "SIYU_REACH_LEASE_SECONDS": "3",
        "SIYU_REACH_BATCH_SIZE": str(BATCH),
        "SIYU_REACH_POLL_SECONDS": "0.1",
        "SIYU_SCHEDULE_ENABLED": "false",  # this test is about sends; the shared database has many workspaces
    }
    siyu = Path(sys.executable).parent / "siyu"
    return subprocess.Popen([str(siyu), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _mine(workspace_id: int) -> list[str]:
    with Receiver.lock:
        return [key for ws, key in Receiver.keys if ws == workspace_id]


@pytest.mark.slow
def test_kill_9_mid_broadcast_then_restart(db: Database, workspace_id: int, receiver: str) -> None:
    now = utcnow()
    with db.transaction() as session:
        session.execute(
            insert(Customer),
            [
                {
                    "workspace_id": workspace_id,
                    "name": f"c{n}",
                    "gender": "unknown",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(COUNT)
            ],
        )
        ids = list(session.scalars(select(Customer.id).where(Customer.workspace_id == workspace_id)))
        service.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref="crash", customer_ids=ids,
            content={"webhook": {"text": "春茶上新"}}, purpose="transactional", channel_preference=["webhook"],
        )  # fmt: skip
    first = _worker(db, receiver)
    try:
        deadline = time.monotonic() + 120
        while len(_mine(workspace_id)) < COUNT * 3 // 10:
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else "worker exited"
            assert time.monotonic() < deadline, (
                f"the worker is not sending ({len(_mine(workspace_id))} received)"
            )
            time.sleep(0.02)
    finally:
        first.send_signal(signal.SIGKILL)  # mid-way, or at once when the test failed above
        first.wait(10)
    with db.reader() as session:
        sent_before = set(
            session.scalars(
                select(ReachMessage.idempotency_key).where(
                    ReachMessage.workspace_id == workspace_id, ReachMessage.status == "sent"
                )
            )
        )
    assert 0 < len(sent_before) < COUNT, "the kill must land mid-way"
    second = _worker(db, receiver)
    try:
        deadline = time.monotonic() + 240
        while True:
            with db.reader() as session:
                statuses = Counter(
                    session.scalars(
                        select(ReachMessage.status).where(ReachMessage.workspace_id == workspace_id)
                    )
                )
            if statuses == {"sent": COUNT}:
                break
            assert second.poll() is None, "the second worker died"
            assert time.monotonic() < deadline, f"not finished: {statuses}"
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0  # a clean stop on SIGTERM
    received = Counter(_mine(workspace_id))
    with db.reader() as session:
        keys = set(
            session.scalars(
                select(ReachMessage.idempotency_key).where(ReachMessage.workspace_id == workspace_id)
            )
        )
    assert set(received) == keys and len(keys) == COUNT  # every message arrived; none marked sent unsent
    assert all(received[key] == 1 for key in sent_before)  # acknowledged and recorded: never again
    repeats = [key for key, n in received.items() if n > 1]
    assert len(repeats) <= BATCH, f"{len(repeats)} repeats: more than the batch in flight at the kill"
