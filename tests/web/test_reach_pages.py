"""The reach pages: the outbox viewer (what each customer received), dead letters with requeue, and the
public one-click unsubscribe page, in both languages."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient

from siyu.auth.service import actor_for
from siyu.core.db import Database
from siyu.reach import service
from siyu.reach.adapters.base import OutboundMessage, SendResult
from siyu.reach.adapters.registry import Adapters
from siyu.reach.tasks import Worker
from siyu.web import i18n
from tests.reach.conftest import reachable
from tests.reach.test_worker import Recording
from tests.web.conftest import csrf_of, log_in, make_login


class FailsB(Recording):
    def send(self, message: OutboundMessage) -> SendResult:
        if message.content.get("text") == "春茶上新 B":
            return SendResult.failed("invalid number")
        return super().send(message)


def _sent_and_dead(db: Database, workspace_id: int) -> tuple[int, int]:
    with db.transaction() as session:
        ok, bad = reachable(session, workspace_id=workspace_id), reachable(session, workspace_id=workspace_id)
        for customer, text in ((ok, "春茶上新 A"), (bad, "春茶上新 B")):
            service.send(
                session, workspace_id=workspace_id, source="broadcast", source_ref=f"spring-{customer}",
                customer_ids=[customer], content={"sms": {"text": text}}, purpose="transactional",
                channel_preference=["sms"],
            )  # fmt: skip
    adapter = FailsB()  # by content: the worker also drains other tests' messages of the shared database
    Worker(
        db, Adapters({"sms": adapter}), rng=random.Random(0), retry_base_seconds=0, workspace_id=workspace_id
    ).drain()
    return ok, bad


@pytest.mark.parametrize(
    ("lang", "words"), [("zh-CN", ["发件箱", "已发送", "群发"]), ("en", ["Outbox", "Received", "broadcast"])]
)
def test_outbox_viewer_shows_what_each_customer_received(
    client: TestClient, db: Database, workspace_id: int, lang: str, words: list[str]
) -> None:
    ok, bad = _sent_and_dead(db, workspace_id)
    log_in(client, make_login(db, workspace_id))
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get("/reach/outbox")
    assert page.status_code == 200, page.text[:400]
    for word in words:
        assert word in page.text
    assert f'id="customer-{ok}"' in page.text and "春茶上新 A" in page.text
    assert "春茶上新 B" not in page.text  # it failed: nobody received it
    one = client.get("/reach/outbox", params={"customer_id": bad})
    assert "春茶上新 A" not in one.text


@pytest.mark.parametrize(("lang", "title"), [("zh-CN", "失败消息"), ("en", "Dead letters")])
def test_dead_letters_page_and_requeue(
    client: TestClient, db: Database, workspace_id: int, lang: str, title: str
) -> None:
    _sent_and_dead(db, workspace_id)
    login = make_login(db, workspace_id)
    log_in(client, login)
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get("/reach/dead-letters")
    assert title in page.text and "invalid number" in page.text
    with db.reader() as session:
        actor = actor_for(session, user_id=login.user_id, workspace_id=workspace_id)
        [dead] = service.list_messages(session, actor=actor, statuses=["failed"])
    refused = client.post(f"/reach/dead-letters/{dead.id}/requeue", data={}, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    done = client.post(
        f"/reach/dead-letters/{dead.id}/requeue",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = client.get(done.headers["location"])
    assert f'id="letter-{dead.id}"' not in after.text and str(dead.id) in after.text


def test_one_click_unsubscribe_page(client: TestClient, db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        customer = reachable(session, workspace_id=workspace_id)
    token = service.unsubscribe_token(workspace_id=workspace_id, customer_id=customer)
    ask = client.get(f"/reach/unsubscribe/{token}")
    assert ask.status_code == 200 and 'id="unsubscribed"' not in ask.text  # opening the link changes nothing
    with db.reader() as session:
        from siyu.customers import service as customers

        facts = customers.contact_facts(session, workspace_id=workspace_id, customer_ids=[customer])[customer]
        assert facts.consents[("email", "marketing")] == "granted"
    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click, without cookies or CSRF token
    done = client.post(f"/reach/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and 'id="unsubscribed"' in done.text
    with db.reader() as session:
        facts = customers.contact_facts(session, workspace_id=workspace_id, customer_ids=[customer])[customer]
        assert facts.consents[("email", "marketing")] == "withdrawn"
    assert client.post(f"/reach/unsubscribe/{token}x").status_code == 404
