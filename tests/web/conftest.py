"""Fixtures of the page tests: an in-process client, logins, and a live server for the browser tests.

Browser tests (marked `browser`) run on SQLite only: they are the slow part, and the pages they drive
are covered on PostgreSQL by the in-process page tests.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.core.config import get_settings
from siyu.core.db import Database
from siyu.web.app import create_app

PASSWORD = "correct-horse-42"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Login:
    """A user who can log in through the page: email, password, and who they are in the workspace."""

    email: str
    password: str
    user_id: int
    workspace_id: int
    role: Role


def make_login(db: Database, workspace_id: int, role: Role = Role.OWNER, name: str = "") -> Login:
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    with db.transaction() as session:
        user = auth.create_user(session, email=email, password=PASSWORD, display_name=name or email)
        auth.add_member(session, workspace_id=workspace_id, user_id=user.id, role=role)
        return Login(email, PASSWORD, user.id, workspace_id, role)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def log_in(client: TestClient, who: Login) -> str:
    """Log `who` in through the login form; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": who.email, "password": who.password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return token


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Uploads and reject files of this test go to a temporary folder."""
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


@pytest.fixture
def client(db: Database, data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def live_server(db: Database, data_dir: Path) -> Iterator[str]:
    """The app served by uvicorn in a thread on a free port of 127.0.0.1; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
