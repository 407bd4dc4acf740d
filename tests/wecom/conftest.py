"""Fixtures: a running fake WeCom, and a workspace whose WeCom settings point at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from siyu.core.db import Database
from siyu.wecom import service as wecom
from siyu.wecom.client import TOKENS
from siyu.wecom.crypto import MessageCrypt
from tests.factories import Member, member

# the page fixtures of tests/web (an in-process client, a live server, headless chromium)
from tests.web.conftest import client, data_dir, live_server  # noqa: F401
from tests.web.test_browser import browser, page  # noqa: F401
from tests.wecom.fake_wecom import FakeWecom, running

TOKEN = "siyuTest123"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture
def fake() -> Iterator[FakeWecom]:
    TOKENS.clear()
    with running() as server:
        yield server
    TOKENS.clear()


@dataclass(frozen=True)
class Corp:
    """A workspace set up for WeCom: its owner, callback path and the crypto WeCom would use."""

    workspace_id: int
    owner: Member
    callback_path: str
    crypt: MessageCrypt

    def crypt_key(self) -> str:
        return ENCODING_AES_KEY


@pytest.fixture
def corp(db: Database, workspace_id: int, fake: FakeWecom) -> Corp:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        view = wecom.save_settings(
            session,
            actor=owner.actor,
            corp_id=fake.corp_id,
            secret=fake.secret,
            token=TOKEN,
            encoding_aes_key=ENCODING_AES_KEY,
            api_base_url=fake.url,
        )
    crypt = MessageCrypt(token=TOKEN, encoding_aes_key=ENCODING_AES_KEY, receive_id=fake.corp_id)
    return Corp(workspace_id=workspace_id, owner=owner, callback_path=view.callback_path, crypt=crypt)
