"""Channel wecom against the fake WeCom: a claim becomes one mass message (add_msg_template) per sending
staff member, each message keeps its msgid, and the send results mark each message delivered or failed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select

from siyu.core.config import Settings
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.reach import service
from siyu.reach.adapters.base import OutboundMessage, SendResult
from siyu.reach.adapters.registry import Adapters, build_adapters
from siyu.reach.adapters.wecom import WecomMassAdapter
from siyu.reach.models import ReachMessage
from siyu.reach.tasks import Worker, poll_wecom_deliveries
from tests.factories import make_customer, unique
from tests.reach.conftest import NOON, reachable

# the fixtures of the WeCom tests: a running fake WeCom and a workspace set up for it
from tests.wecom.conftest import Corp, corp, fake  # noqa: F401
from tests.wecom.fake_wecom import FakeWecom
from tests.wecom.test_service import befriend

TEXT = {"wecom": {"text": "新品上市，回复了解详情"}}
ADD = "/cgi-bin/externalcontact/add_msg_template"


def _grant(db: Database, workspace_id: int, customer_ids: list[int]) -> None:
    with db.transaction() as session:
        for customer_id in customer_ids:
            customers.record_system_consent(
                session, workspace_id=workspace_id, customer_id=customer_id, contact_channel="wecom",
                purpose="marketing", status="granted", source="test",
            )  # fmt: skip


def _send(db: Database, workspace_id: int, customer_ids: list[int], ref: str = "spring") -> None:
    with db.transaction() as session:
        summary = service.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=ref, customer_ids=customer_ids,
            content=TEXT, purpose="marketing", channel_preference=["wecom"], now=NOON,
        )  # fmt: skip
    assert summary.by_status == {"queued": len(customer_ids)}


def _by_customer(db: Database, workspace_id: int) -> dict[int, ReachMessage]:
    with db.reader() as session:
        rows = session.scalars(select(ReachMessage).where(ReachMessage.workspace_id == workspace_id))
        return {m.customer_id: m for m in rows}


def _worker(db: Database, workspace_id: int) -> Worker:
    adapters = build_adapters(Settings(reach_channels={"wecom": "wecom"}), database=db)
    assert isinstance(adapters.for_channel("wecom"), WecomMassAdapter)
    return Worker(db, adapters, workspace_id=workspace_id)


def test_one_mass_message_per_staff_member_then_results_per_customer(
    db: Database,
    corp: Corp,  # noqa: F811
    fake: FakeWecom,  # noqa: F811
) -> None:
    ws = corp.workspace_id
    zhang = [befriend(db, corp, fake, "zhangsan") for _ in range(3)]
    li = befriend(db, corp, fake, "lisi")
    gone = befriend(db, corp, fake, "wangwu")  # WeCom knows no member wangwu (left the corp)
    stale = befriend(db, corp, fake, "lisi")
    fake.friends.discard(("lisi", stale[0]))  # deleted in WeCom; siyu has not heard yet
    with db.transaction() as session:  # an external userid, but nobody's friend: nobody can send
        lonely = make_customer(
            session, workspace_id=ws, identities={"wecom_external_userid": unique("wm")}
        ).id
    everyone = [c for _, c in zhang] + [li[1], gone[1], stale[1], lonely]
    _grant(db, ws, everyone)
    _send(db, ws, everyone)

    worker = _worker(db, ws)
    assert worker.drain() == len(everyone)
    calls = [body for path, body in fake.calls if path == ADD]
    assert sorted((c["sender"], sorted(c["external_userid"])) for c in calls) == sorted(
        [
            ("lisi", sorted([li[0], stale[0]])),
            ("wangwu", [gone[0]]),
            ("zhangsan", sorted(e for e, _ in zhang)),
        ]
    )
    assert all(c["chat_type"] == "single" and c["text"] == {"content": TEXT["wecom"]["text"]} for c in calls)
    messages = _by_customer(db, ws)
    zhang_msgid = messages[zhang[0][1]].provider_message_id
    assert zhang_msgid in fake.mass_messages
    assert {messages[c].provider_message_id for _, c in zhang} == {zhang_msgid}
    assert {c: messages[c].status for c in everyone} == {
        **{c: "sent" for _, c in zhang}, li[1]: "sent", gone[1]: "failed", stale[1]: "failed", lonely: "failed",
    }  # fmt: skip
    assert "not a friend" in (messages[stale[1]].last_error or "")
    assert "40003" in (messages[gone[1]].last_error or "")
    assert "no WeCom friend" in (messages[lonely].last_error or "")

    # nobody confirmed yet: everything waits (the worker's own poll: its channel wecom goes to WeCom)
    first = worker.poll_results()
    assert first is not None
    assert (first.batches, first.delivered, first.failed, first.waiting) == (2, 0, 0, 4)
    # zhangsan sends it in WeCom; one of his customers had had a mass message that day already
    fake.mass_messages[zhang_msgid]["sent"].add("zhangsan")
    fake.mass_messages[zhang_msgid]["statuses"][zhang[2][0]] = 3
    second = poll_wecom_deliveries(db, workspace_id=ws)
    assert (second.delivered, second.failed, second.waiting) == (2, 1, 1)
    messages = _by_customer(db, ws)
    assert [messages[c].status for _, c in zhang] == ["delivered", "delivered", "failed"]
    assert "another enterprise mass message" in (messages[zhang[2][1]].last_error or "")
    assert messages[li[1]].status == "sent"
    # polling again changes nothing; lisi never confirms, and after three days the message fails
    assert poll_wecom_deliveries(db, workspace_id=ws).delivered == 0
    late = poll_wecom_deliveries(db, workspace_id=ws, now=utcnow() + timedelta(days=3, minutes=1))
    assert (late.failed, late.waiting) == (1, 0)
    assert "lisi did not send" in (_by_customer(db, ws)[li[1]].last_error or "")
    with db.reader() as session:
        assert service.open_wecom_batches(session, workspace_id=ws) == []


def test_different_content_is_a_different_mass_message_and_a_refusal_retries(
    db: Database,
    corp: Corp,  # noqa: F811
    fake: FakeWecom,  # noqa: F811
) -> None:
    ws = corp.workspace_id
    first, second = befriend(db, corp, fake, "zhangsan"), befriend(db, corp, fake, "zhangsan")
    _grant(db, ws, [first[1], second[1]])
    _send(db, ws, [first[1]], ref="a")
    with db.transaction() as session:
        service.send(
            session, workspace_id=ws, source="broadcast", source_ref="b", customer_ids=[second[1]],
            content={"wecom": {"text": "另一条"}}, purpose="marketing", channel_preference=["wecom"], now=NOON,
        )  # fmt: skip
    fake.revoke_tokens()
    fake.secret = "rotated"  # the saved secret no longer opens the corp: WeCom refuses, the batch retries
    worker = _worker(db, ws)
    worker.drain(max_rounds=1)
    messages = _by_customer(db, ws)
    assert {m.status for m in messages.values()} == {"queued"}
    assert all("40001" in (m.last_error or "") or "secret" in (m.last_error or "") for m in messages.values())
    fake.secret = "fake-secret"
    with db.transaction() as session:  # due again now
        for message in session.scalars(select(ReachMessage).where(ReachMessage.workspace_id == ws)):
            message.due_at = NOON
    worker.drain()
    assert len(fake.mass_messages) == 2  # one task per content, none from the refused round
    messages = _by_customer(db, ws)
    assert {m.status for m in messages.values()} == {"sent"}
    assert messages[first[1]].provider_message_id != messages[second[1]].provider_message_id


def test_a_claim_of_the_batch_channel_is_one_task_per_staff_member_whatever_the_batch_size(
    db: Database,
    corp: Corp,  # noqa: F811
    fake: FakeWecom,  # noqa: F811
) -> None:
    ws = corp.workspace_id
    friends = [befriend(db, corp, fake, "zhangsan")[1] for _ in range(5)]
    _grant(db, ws, friends)
    _send(db, ws, friends)
    worker = _worker(db, ws)
    worker.batch_size = 2  # the other channels' claim size does not split WeCom's batch
    assert worker.run_once() == 5
    assert fake.count(ADD) == 1
    assert {m.status for m in _by_customer(db, ws).values()} == {"sent"}


class Exploding:
    kind = "exploding"
    max_batch = 100

    def __init__(self) -> None:
        self.batches: list[int] = []

    def send(self, message: OutboundMessage) -> SendResult:
        raise AssertionError("a batch adapter is handed batches")

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        self.batches.append(len(messages))
        raise RuntimeError("provider library bug")


def test_a_batch_adapter_that_raises_retries_its_whole_batch(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        ids = [reachable(session, workspace_id=workspace_id) for _ in range(3)]
    _send(db, workspace_id, ids)
    adapter = Exploding()
    worker = Worker(db, Adapters({"wecom": adapter}), workspace_id=workspace_id)
    assert worker.run_once() == 3
    assert adapter.batches == [3]
    messages = _by_customer(db, workspace_id).values()
    assert {m.status for m in messages} == {"queued"}
    assert all("provider library bug" in (m.last_error or "") for m in messages)
    assert worker.poll_results() is None  # channel wecom does not go to WeCom here: nothing to poll
