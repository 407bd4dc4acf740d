"""Helpers of the broadcast tests: an audience of reachable customers in a city segment, a recording
provider at the adapter seam, and a worker of the test's workspace."""

from __future__ import annotations

import random
import threading
from typing import Any

from sqlalchemy.orm import Session

from siyu.auth.service import Actor
from siyu.broadcasts import service
from siyu.core.db import Database
from siyu.customers import service as customers
from siyu.reach.adapters.base import OutboundMessage, SendResult
from siyu.reach.adapters.registry import Adapters
from siyu.reach.tasks import Worker
from siyu.segments import service as segments
from tests.factories import make_customer, unique
from tests.reach.conftest import CONTENT, NOON
from tests.web.conftest import client, data_dir, live_server  # noqa: F401
from tests.web.test_browser import browser, page  # noqa: F401

__all__ = ["CONTENT", "NOON", "Recording", "audience", "customer", "progress_total", "worker"]


class Recording:
    """A fake provider at the adapter seam: records each message it is handed."""

    kind = "fake"

    def __init__(self) -> None:
        self.calls: list[OutboundMessage] = []
        self.lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self.lock:
            self.calls.append(message)
        return SendResult.sent(f"p-{message.message_id}")


def customer(
    session: Session,
    *,
    workspace_id: int,
    city: str,
    wecom: bool = True,
    grants: tuple[str, ...] = ("sms", "wecom", "email"),
) -> int:
    """A customer of `city` with a phone, an email, a WeCom external userid (a friend) unless `wecom` is
    false, and marketing consent on `grants`."""
    identities = {"email": f"{unique('e')}@example.com"}
    if wecom:
        identities["wecom_external_userid"] = unique("wm")
    found = make_customer(session, workspace_id=workspace_id, city=city, identities=identities)
    for channel in grants:
        customers.record_system_consent(
            session,
            workspace_id=workspace_id,
            customer_id=found.id,
            contact_channel=channel,
            purpose="marketing",
            status="granted",
            source="test",
        )
    return found.id


def audience(
    db: Database, workspace_id: int, actor: Actor, count: int, **kwargs: Any
) -> tuple[int, list[int]]:
    """A segment (city = a fresh name) of `count` reachable customers: (segment id, customer ids)."""
    city = unique("城")
    with db.transaction() as session:
        ids = [customer(session, workspace_id=workspace_id, city=city, **kwargs) for _ in range(count)]
        segment = segments.create_segment(session, actor=actor, name=unique("分群"), rule=f'city = "{city}"')
    return segment.id, ids


def worker(db: Database, workspace_id: int, adapter: Recording) -> Worker:
    """A worker of this test's workspace only (the database is shared with other tests)."""
    fake = Adapters({c: adapter for c in ("sms", "wecom", "email")})  # type: ignore[dict-item]
    return Worker(db, fake, rng=random.Random(1), retry_base_seconds=0.0, workspace_id=workspace_id)


def progress_total(db: Database, actor: Actor, broadcast_id: int) -> tuple[int, dict[str, int]]:
    with db.reader() as session:
        found = service.progress(session, actor=actor, broadcast_id=broadcast_id)
    assert sum(found.counts.values()) == found.audience, found
    return found.audience, {k: v for k, v in found.counts.items() if v}
