"""Live codes' welcome messages (欢迎语): the add callback queues one, the worker's periodic task sends it
through send_welcome_msg with the callback's welcome code inside WeCom's 20-second window, once; one
that cannot go (window passed, no welcome code) fails with its reason audited, never silently."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.livecodes import service as livecodes
from siyu.livecodes.models import LiveCodeAdd
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.reach.tasks import periodic_tasks
from siyu.wecom import service as wecom
from siyu.wecom import tasks
from tests.factories import api_client
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom
from tests.wecom.test_callbacks import contact_event, deliver


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


def _add(db: Database, corp: Corp, fake: FakeWecom, state: str, *, welcome_code: bool = True) -> str:
    external = "wmEXT" + uuid.uuid4().hex[:12]
    code = fake.add_friend("wangwu", external)
    extra = {"State": state, **({"WelcomeCode": code} if welcome_code else {})}
    message = contact_event("add_external_contact", userid="wangwu", external=external, **extra)
    assert deliver(api_client(db), corp, message) == (200, "success")
    return external


def _status(db: Database, external: str) -> str:
    with db.reader() as session:
        return session.scalar(
            select(LiveCodeAdd.welcome_status).where(LiveCodeAdd.external_userid == external)
        )


def test_the_welcome_message_goes_out_once_within_the_window(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    state = _code_with_welcome(db, corp, "欢迎光临，送你一张新人券")
    external = _add(db, corp, fake, state)
    assert _status(db, external) == "pending"
    assert tasks.send_welcomes(db) == 1
    [body] = fake.welcomes_sent
    assert body["text"] == {"content": "欢迎光临，送你一张新人券"} and body["welcome_code"]
    assert _status(db, external) == "sent"
    assert tasks.send_welcomes(db) == 0 and len(fake.welcomes_sent) == 1  # a second poll sends nothing
    assert tasks.send_welcomes in periodic_tasks()  # the worker of siyu worker / siyu serve runs it


def test_a_welcome_that_cannot_go_fails_with_its_reason(db: Database, corp: Corp, fake: FakeWecom) -> None:
    state = _code_with_welcome(db, corp, "欢迎")
    no_code = _add(db, corp, fake, state, welcome_code=False)
    assert tasks.send_welcomes(db) == 0
    assert _status(db, no_code) == "failed"
    late = _add(db, corp, fake, state)
    assert tasks.send_welcomes(db, now=utcnow() + timedelta(seconds=25)) == 0  # the 20 s have passed
    assert _status(db, late) == "failed" and fake.welcomes_sent == []
    with db.reader() as session:
        reasons = [
            a.detail["reason"]
            for a in session.scalars(
                select(AuditEntry).where(
                    AuditEntry.workspace_id == corp.workspace_id,
                    AuditEntry.action == "livecode.welcome_failed",
                )
            )
        ]
    assert len(reasons) == 2
    assert any("no welcome code" in r for r in reasons) and any("window passed" in r for r in reasons)


def test_a_code_without_welcome_text_queues_nothing(db: Database, corp: Corp, fake: FakeWecom) -> None:
    state = _code_with_welcome(db, corp, "")
    external = _add(db, corp, fake, state)
    assert _status(db, external) == "none"
    assert tasks.send_welcomes(db) == 0 and fake.welcomes_sent == []
