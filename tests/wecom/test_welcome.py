"""Live codes' welcome messages (欢迎语) through the send gateway: the add callback queues one on the add,
the worker's periodic task hands it to `reach.send` (channel wecom_welcome, transactional), the worker
sends it through send_welcome_msg with the callback's welcome code inside WeCom's 20-second window,
once, and the add's welcome status follows the message's outcome. One that cannot go (do-not-contact,
window passed, no welcome code) ends with its reason, never silently."""

from __future__ import annotations

import time
import uuid
from functools import partial

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.core.audit import AuditEntry
from siyu.core.config import Settings
from siyu.core.db import Database
from siyu.livecodes import service as livecodes
from siyu.livecodes.models import LiveCodeAdd
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.reach import service as reach
from siyu.reach.adapters.registry import Adapters, build_adapters, welcome_sender
from siyu.reach.adapters.wecom_welcome import WecomWelcomeAdapter
from siyu.reach.models import ReachMessage
from siyu.reach.tasks import Worker, periodic_tasks
from siyu.web import i18n
from siyu.wecom import service as wecom
from siyu.wecom import tasks
from tests.factories import api_client
from tests.web.conftest import log_in, make_login
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom
from tests.wecom.test_callbacks import contact_event, deliver

WELCOME_PATH = "/cgi-bin/externalcontact/send_welcome_msg"


def _code_with_welcome(db: Database, corp: Corp, text: str) -> str:
    with db.transaction() as session:
        wecom.map_staff(session, actor=corp.owner.actor, wecom_userid="wangwu", user_id=corp.owner.user_id)
        code = livecodes.create_live_code(
            session,
            actor=corp.owner.actor,
            spec=LiveCodeIn(
                name=f"桌贴{uuid.uuid4().hex[:4]}",
                placement="store_table",
                staff=[StaffIn(user_id=corp.owner.user_id)],
                welcome_text=text,
            ),
        )
        return code.state


def _add(
    db: Database, corp: Corp, fake: FakeWecom, state: str, *, welcome_code: bool = True, ago: int = 0
) -> str:
    external = "wmEXT" + uuid.uuid4().hex[:12]
    code = fake.add_friend("wangwu", external)
    extra = {"State": state, **({"WelcomeCode": code} if welcome_code else {})}
    created = int(time.time()) - ago
    message = contact_event(
        "add_external_contact", userid="wangwu", external=external, created=created, **extra
    )
    assert deliver(api_client(db), corp, message) == (200, "success")
    return external


def _the_add(db: Database, external: str) -> LiveCodeAdd:
    with db.reader() as session:
        add = session.scalar(select(LiveCodeAdd).where(LiveCodeAdd.external_userid == external))
        assert add is not None
        session.expunge(add)
        return add


def _messages(db: Database, corp: Corp, external: str) -> list[ReachMessage]:
    add = _the_add(db, external)
    with db.reader() as session:
        rows = list(
            session.scalars(
                select(ReachMessage).where(
                    ReachMessage.workspace_id == corp.workspace_id,
                    ReachMessage.customer_id == add.customer_id,
                )
            )
        )
        session.expunge_all()
        return rows


def _worker(db: Database, corp: Corp, *, retry_seconds: float = 1.0) -> Worker:
    """The worker of `siyu worker`, on this test's workspace only: welcome task first, then claims."""
    adapter = WecomWelcomeAdapter(send_welcome=welcome_sender(db), retry_seconds=retry_seconds)
    return Worker(
        db,
        Adapters({reach.WELCOME_CHANNEL: adapter}),
        workspace_id=corp.workspace_id,
        periodic=[partial(tasks.send_welcomes, workspace_id=corp.workspace_id)],
    )


def _failure_reasons(db: Database, corp: Corp, add_id: int) -> list[str]:
    with db.reader() as session:
        return [
            a.detail["reason"]
            for a in session.scalars(
                select(AuditEntry).where(
                    AuditEntry.workspace_id == corp.workspace_id,
                    AuditEntry.action == "livecode.welcome_failed",
                    AuditEntry.target_id == str(add_id),
                )
            )
        ]


def test_the_welcome_goes_through_the_gateway_once_within_the_window(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    state = _code_with_welcome(db, corp, "欢迎光临，送你一张新人券")
    external = _add(db, corp, fake, state)
    assert _the_add(db, external).welcome_status == "pending"
    worker = _worker(db, corp)
    started = time.monotonic()
    assert worker.run_once() == 1  # enqueued by the periodic task and sent in the same poll
    [body] = fake.welcomes_sent
    assert body["text"] == {"content": "欢迎光临，送你一张新人券"} and body["welcome_code"]
    [message] = _messages(db, corp, external)
    assert (message.status, message.channel, message.source, message.purpose) == (
        "sent",
        "wecom_welcome",
        "live_code",
        "transactional",
    )
    assert message.address == external and message.attempts == 1
    assert worker.run_once() == 0  # the next poll settles the add from its message
    assert time.monotonic() - started < 10  # well inside WeCom's 20 s
    assert _the_add(db, external).welcome_status == "sent"
    assert worker.run_once() == 0 and worker.run_once() == 0  # later polls send and enqueue nothing more
    assert fake.count(WELCOME_PATH) == 1 and len(_messages(db, corp, external)) == 1
    assert tasks.send_welcomes.__name__ in {t.__name__ for t in periodic_tasks()}


def test_a_retried_poll_enqueues_once(db: Database, corp: Corp, fake: FakeWecom) -> None:
    state = _code_with_welcome(db, corp, "欢迎")
    external = _add(db, corp, fake, state)
    first = tasks.send_welcomes(db, workspace_id=corp.workspace_id)
    again = tasks.send_welcomes(db, workspace_id=corp.workspace_id)  # before any worker claimed it
    assert (first.queued, again.queued) == (1, 0)
    [message] = _messages(db, corp, external)
    assert message.status == "queued" and message.idempotency_key.startswith(
        tasks.welcome_key(_the_add(db, external).id)
    )
    assert fake.count(WELCOME_PATH) == 0  # the task decides; only the worker sends


def test_a_customer_marked_do_not_contact_is_suppressed_without_a_call(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    state = _code_with_welcome(db, corp, "欢迎")
    external = _add(db, corp, fake, state)
    add = _the_add(db, external)
    with db.transaction() as session:
        reach.set_do_not_contact(
            session, actor=corp.owner.actor, customer_id=add.customer_id, do_not_contact=True
        )
    worker = _worker(db, corp)
    worker.run_once()
    worker.run_once()
    [message] = _messages(db, corp, external)
    assert (message.status, message.reason) == ("suppressed", "do_not_contact")
    assert fake.count(WELCOME_PATH) == 0
    assert _the_add(db, external).welcome_status == "failed"
    [reason] = _failure_reasons(db, corp, add.id)
    assert "do_not_contact" in reason


def test_past_the_window_fails_with_the_reason_without_a_call(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    state = _code_with_welcome(db, corp, "欢迎")
    late = _add(db, corp, fake, state, ago=25)  # the worker was down: the 20 s passed before it looked
    no_code = _add(db, corp, fake, state, welcome_code=False)
    worker = _worker(db, corp)
    worker.run_once()
    worker.run_once()
    assert fake.count(WELCOME_PATH) == 0  # siyu knows both cannot go: WeCom is not asked
    for external, words in ((late, "window has passed"), (no_code, "no welcome code")):
        [message] = _messages(db, corp, external)
        assert message.status == "failed" and words in (message.last_error or "")
        assert message.attempts == 1  # a permanent failure: no retry
        add = _the_add(db, external)
        assert add.welcome_status == "failed"
        [reason] = _failure_reasons(db, corp, add.id)
        assert words in reason


def test_a_backlog_long_past_the_window_is_settled_without_a_message(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    state = _code_with_welcome(db, corp, "欢迎")
    old = _add(db, corp, fake, state, ago=3600)  # the worker was down for an hour
    worker = _worker(db, corp)
    worker.run_once()
    add = _the_add(db, old)
    assert add.welcome_status == "failed" and _messages(db, corp, old) == []
    assert fake.count(WELCOME_PATH) == 0
    [reason] = _failure_reasons(db, corp, add.id)
    assert "window passed" in reason


def test_a_transient_wecom_error_is_retried_within_the_window_and_sent_once(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    state = _code_with_welcome(db, corp, "欢迎再次光临")
    external = _add(db, corp, fake, state)
    # WeCom answers -1 (system busy) twice — the client's own immediate retry included — then accepts
    fake.busy[WELCOME_PATH] = 2
    worker = _worker(db, corp, retry_seconds=0)
    worker.run_once()
    [message] = _messages(db, corp, external)
    assert message.status == "queued" and "system busy" in (message.last_error or "")
    assert _the_add(db, external).welcome_status == "pending"
    worker.run_once()  # the retry, due at once: the welcome code is still good
    worker.run_once()
    [message] = _messages(db, corp, external)
    assert (message.status, message.attempts) == ("sent", 2)
    assert len(fake.welcomes_sent) == 1 and fake.count(WELCOME_PATH) == 3
    assert _the_add(db, external).welcome_status == "sent"


def test_a_code_without_welcome_text_queues_nothing(db: Database, corp: Corp, fake: FakeWecom) -> None:
    state = _code_with_welcome(db, corp, "")
    external = _add(db, corp, fake, state)
    assert _the_add(db, external).welcome_status == "none"
    _worker(db, corp).run_once()
    assert fake.welcomes_sent == [] and _messages(db, corp, external) == []


def test_the_worker_of_siyu_worker_sends_welcomes_through_wecom(db: Database) -> None:
    adapters = build_adapters(Settings(reach_channels={}), database=db)
    assert isinstance(adapters.for_channel("wecom_welcome"), WecomWelcomeAdapter)
    assert not isinstance(
        build_adapters(Settings(reach_channels={"wecom_welcome": "log"}), database=db).for_channel(
            "wecom_welcome"
        ),
        WecomWelcomeAdapter,
    )


@pytest.mark.parametrize(
    ("lang", "words"), [("zh-CN", ["企微欢迎语", "活码"]), ("en", ["WeCom welcome message", "Live code"])]
)
def test_the_outbox_viewer_shows_welcome_messages(
    client: TestClient, db: Database, corp: Corp, fake: FakeWecom, lang: str, words: list[str]
) -> None:
    state = _code_with_welcome(db, corp, f"欢迎{lang}")
    external = _add(db, corp, fake, state)
    _worker(db, corp).run_once()
    add = _the_add(db, external)
    log_in(client, make_login(db, corp.workspace_id))
    client.cookies.set(i18n.LANG_COOKIE, lang)
    page = client.get("/reach/outbox", params={"customer_id": add.customer_id})
    assert page.status_code == 200, page.text[:400]
    assert f'id="customer-{add.customer_id}"' in page.text and f"欢迎{lang}" in page.text
    for word in words:
        assert word in page.text
