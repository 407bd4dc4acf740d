"""Broadcasts end to end on the real database: counts that add up to the audience in every state,
starts that decide no customer twice (repeated, or after a crash), pause / resume / cancel against a
real worker, scheduled starts, WeCom → SMS fallback by friendship, variants and a holdout recorded and
stable, and the results against the holdout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from siyu.broadcasts import service, tasks
from siyu.broadcasts.models import BroadcastRecipient
from siyu.core.db import Database
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.experiments import service as experiments
from siyu.reach import service as reach
from siyu.reach.models import ReachMessage
from tests.broadcasts.conftest import CONTENT, NOON, Recording, audience, customer, progress_total, worker
from tests.factories import make_order, member, unique


def _create(db: Database, actor, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("name", unique("群发"))
    kwargs.setdefault("purpose", "marketing")
    kwargs.setdefault("channel_preference", ["wecom", "sms"])
    kwargs.setdefault("content", CONTENT)
    with db.transaction() as session:
        return service.create_broadcast(session, actor=actor, **kwargs).id


def _start(db: Database, actor, broadcast_id: int) -> None:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        service.start_broadcast(session, actor=actor, broadcast_id=broadcast_id, now=NOON)


def _messages(db: Database, broadcast_id: int) -> list[ReachMessage]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(ReachMessage).where(
                    ReachMessage.source == "broadcast", ReachMessage.source_ref == str(broadcast_id)
                )
            )
        )


def test_counts_add_up_to_the_audience_in_every_state(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _, ids = audience(db, workspace_id, owner.actor, 9)
    _, without_consent = audience(db, workspace_id, owner.actor, 3, grants=())
    broadcast_id = _create(db, owner.actor, customer_ids=ids + without_consent)
    assert progress_total(db, owner.actor, broadcast_id) == (0, {})
    _start(db, owner.actor, broadcast_id)
    assert progress_total(db, owner.actor, broadcast_id) == (12, {"awaiting_decision": 12})
    with db.transaction() as session:
        assert (
            service.decide_next(
                session, workspace_id=workspace_id, broadcast_id=broadcast_id, limit=5, now=NOON
            )
            == 5
        )
    audience_size, counts = progress_total(db, owner.actor, broadcast_id)
    assert audience_size == 12 and counts["awaiting_decision"] == 7
    tasks.run_due(db, now=NOON)
    audience_size, counts = progress_total(db, owner.actor, broadcast_id)
    assert counts == {"queued": 9, "suppressed": 3}
    with db.reader() as session:
        assert service.progress(session, actor=owner.actor, broadcast_id=broadcast_id).by_reason == {
            "no_consent": 3
        }
    with db.transaction() as session:
        service.pause_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id, now=NOON)
    assert progress_total(db, owner.actor, broadcast_id)[1] == {"held": 9, "suppressed": 3}
    with db.transaction() as session:
        service.resume_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id, now=NOON)
    worker(db, workspace_id, Recording()).drain()
    assert progress_total(db, owner.actor, broadcast_id)[1] == {"sent": 9, "suppressed": 3}
    tasks.run_due(db, now=NOON)
    with db.reader() as session:
        assert service.get_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id).status == "sent"


def test_start_twice_or_after_a_crash_decides_no_customer_twice(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    segment_id, ids = audience(db, workspace_id, owner.actor, 7)
    broadcast_id = _create(db, owner.actor, segment_id=segment_id)
    _start(db, owner.actor, broadcast_id)
    _start(db, owner.actor, broadcast_id)  # a repeated start changes nothing
    with db.reader() as session:
        assert service.get_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id).audience_size == 7

    class Crash(Exception):
        pass

    with pytest.raises(Crash), db.transaction() as session:  # a worker dies in the middle of a chunk
        service.decide_next(session, workspace_id=workspace_id, broadcast_id=broadcast_id, limit=4, now=NOON)
        raise Crash
    assert _messages(db, broadcast_id) == []
    with db.transaction() as session:
        service.decide_next(session, workspace_id=workspace_id, broadcast_id=broadcast_id, limit=4, now=NOON)
    # the gateway's own key holds as well: sending the same step again decides nobody anew
    with db.transaction() as session:
        again = reach.send(
            session, workspace_id=workspace_id, source="broadcast", source_ref=str(broadcast_id),
            customer_ids=ids, content=CONTENT, purpose="marketing", channel_preference=["wecom", "sms"], now=NOON,
        )  # fmt: skip
    assert again.existing == 4 and again.created == 3
    tasks.run_due(db, now=NOON)
    tasks.run_due(db, now=NOON)
    messages = _messages(db, broadcast_id)
    assert sorted(m.customer_id for m in messages) == sorted(ids)
    assert progress_total(db, owner.actor, broadcast_id) == (7, {"queued": 7})


def test_pause_stops_delivery_and_resume_continues(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    segment_id, ids = audience(db, workspace_id, owner.actor, 6)
    broadcast_id = _create(db, owner.actor, segment_id=segment_id)
    _start(db, owner.actor, broadcast_id)
    with db.transaction() as session:
        service.decide_next(session, workspace_id=workspace_id, broadcast_id=broadcast_id, limit=4, now=NOON)
        service.pause_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id, now=NOON)
    adapter = Recording()
    tasks.run_due(db, now=NOON)  # decides nothing while paused
    worker(db, workspace_id, adapter).drain()
    assert adapter.calls == []
    assert progress_total(db, owner.actor, broadcast_id)[1] == {"awaiting_decision": 2, "held": 4}
    with db.transaction() as session:
        service.resume_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id, now=NOON)
    tasks.run_due(db, now=NOON)
    worker(db, workspace_id, adapter).drain()
    assert sorted(c.customer_id for c in adapter.calls) == sorted(ids)
    assert progress_total(db, owner.actor, broadcast_id)[1] == {"sent": 6}


def test_cancel_suppresses_the_rest_with_a_reason(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    segment_id, _ids = audience(db, workspace_id, owner.actor, 10)
    broadcast_id = _create(db, owner.actor, segment_id=segment_id)
    _start(db, owner.actor, broadcast_id)
    with db.transaction() as session:
        service.decide_next(session, workspace_id=workspace_id, broadcast_id=broadcast_id, limit=5, now=NOON)
    adapter = Recording()
    own = worker(db, workspace_id, adapter)
    own.batch_size = 2
    own.run_once()
    with db.transaction() as session:
        service.cancel_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id, now=NOON)
    tasks.run_due(db, now=NOON)
    own.drain()
    assert len(adapter.calls) == 2
    assert progress_total(db, owner.actor, broadcast_id) == (
        10,
        {"sent": 2, "suppressed": 3, "cancelled_before_decision": 5},
    )
    with db.reader() as session:
        assert service.progress(session, actor=owner.actor, broadcast_id=broadcast_id).by_reason == {
            "cancelled": 3
        }
    with pytest.raises(Conflict), db.transaction() as session:
        service.resume_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id, now=NOON)


def test_a_scheduled_broadcast_starts_when_due(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    segment_id, ids = audience(db, workspace_id, owner.actor, 3)
    broadcast_id = _create(db, owner.actor, segment_id=segment_id, send_at=NOON + timedelta(hours=1))
    _start(db, owner.actor, broadcast_id)
    tasks.run_due(db, now=NOON)
    with db.reader() as session:
        assert (
            service.get_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id).status == "scheduled"
        )
    assert _messages(db, broadcast_id) == []
    # the snapshot is taken at send time: a customer who joins the segment before then is in it
    with db.transaction() as session:
        from siyu.segments import service as segments

        city = segments.get_segment(session, workspace_id=workspace_id, segment_id=segment_id).rule
        late = customer(session, workspace_id=workspace_id, city=str(_city(city)))
    tasks.run_due(db, now=NOON + timedelta(hours=1, minutes=1))
    assert sorted(m.customer_id for m in _messages(db, broadcast_id)) == sorted([*ids, late])
    with db.reader() as session:
        found = service.get_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id)
    assert found.status == "sending" and found.started_at == NOON + timedelta(hours=1, minutes=1)


def _city(rule: dict) -> str:  # type: ignore[type-arg]
    """The city a test segment's rule names (its canonical JSON holds the compared value)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.startswith("城"):
            found.append(node)

    walk(rule)
    return found[0]


def test_wecom_for_friends_sms_for_the_others(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _, friends = audience(db, workspace_id, owner.actor, 3)
    _, strangers = audience(db, workspace_id, owner.actor, 2, wecom=False)
    broadcast_id = _create(db, owner.actor, customer_ids=friends + strangers)
    _start(db, owner.actor, broadcast_id)
    tasks.run_due(db, now=NOON)
    adapter = Recording()
    worker(db, workspace_id, adapter).drain()
    channel = {c.customer_id: c.channel for c in adapter.calls}
    assert channel == {**dict.fromkeys(friends, "wecom"), **dict.fromkeys(strangers, "sms")}
    by_customer = {m.customer_id: m for m in _messages(db, broadcast_id)}
    assert by_customer[strangers[0]].explanation[0] == {"channel": "wecom", "reason": "not_wecom_friend"}


def test_variants_and_holdout_are_recorded_and_stable(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _, ids = audience(db, workspace_id, owner.actor, 60)
    variants = {
        "a": {"weight": 1, "content": {k: {**v, "text": "A"} for k, v in CONTENT.items()}},
        "b": {"weight": 1, "content": {k: {**v, "text": "B"} for k, v in CONTENT.items()}},
    }
    broadcast_id = _create(db, owner.actor, customer_ids=ids, variants=variants, holdout_share=0.25)
    _start(db, owner.actor, broadcast_id)
    tasks.run_due(db, now=NOON)
    with db.reader() as session:
        recipients = {
            r.customer_id: r.variant
            for r in session.scalars(
                select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id)
            )
        }
        experiment_id = service.get_broadcast(
            session, actor=owner.actor, broadcast_id=broadcast_id
        ).experiment_id
    assert set(recipients) == set(ids)
    assert set(recipients.values()) == {"a", "b", "holdout"}
    messages = {m.customer_id: m for m in _messages(db, broadcast_id)}
    holdout = {c for c, v in recipients.items() if v == "holdout"}
    assert holdout and not holdout & set(messages)
    for customer_id, message in messages.items():
        assert message.step == recipients[customer_id]
        assert message.content["text"] == recipients[customer_id].upper()
    assert experiment_id is not None
    with db.transaction() as session:  # the experiment agrees, and asking again gives the same arm
        for customer_id, variant in list(recipients.items())[:20]:
            arm = experiments.assign(
                session, workspace_id=workspace_id, experiment_id=experiment_id, customer_id=customer_id
            )
            assert (arm or "holdout") == variant
    _audience_size, counts = progress_total(db, owner.actor, broadcast_id)
    assert counts == {"holdout": len(holdout), "queued": 60 - len(holdout)}


def test_results_against_the_holdout(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _, ids = audience(db, workspace_id, owner.actor, 40)
    broadcast_id = _create(db, owner.actor, customer_ids=ids, holdout_share=0.3, conversion_window_days=7)
    _start(db, owner.actor, broadcast_id)
    tasks.run_due(db, now=NOON)
    worker(db, workspace_id, Recording()).drain()
    with db.reader() as session:
        arms = {
            r.customer_id: r.variant
            for r in session.scalars(
                select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id)
            )
        }
    messaged = [c for c, v in arms.items() if v != "holdout"]
    held_out = [c for c, v in arms.items() if v == "holdout"]
    with db.transaction() as session:
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=messaged[0],
            paid_cents=5000,
            placed_at=NOON + timedelta(days=1),
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=messaged[1],
            paid_cents=3000,
            placed_at=NOON + timedelta(days=2),
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=held_out[0],
            paid_cents=1000,
            placed_at=NOON + timedelta(days=3),
        )
        # outside the window, and before the send: neither counts
        make_order(
            session, workspace_id=workspace_id, customer_id=messaged[2], placed_at=NOON + timedelta(days=8)
        )
        make_order(
            session, workspace_id=workspace_id, customer_id=messaged[3], placed_at=NOON - timedelta(days=1)
        )
    with db.reader() as session:
        found = service.results(session, actor=owner.actor, broadcast_id=broadcast_id)
    groups = {g.group: g for g in found.groups}
    assert set(groups) == {"message", "holdout"}
    assert (groups["message"].customers, groups["message"].delivered) == (len(messaged), len(messaged))
    assert (groups["message"].converted, groups["message"].revenue_cents) == (2, 8000)
    assert (groups["holdout"].customers, groups["holdout"].converted, groups["holdout"].revenue_cents) == (
        len(held_out),
        1,
        1000,
    )
    assert found.clicked is None and "no tracked links" in found.clicks_note and found.experiment is not None
    assert {a.name for a in found.experiment.arms} == {"message", "holdout"}


def test_bad_input_is_refused_with_where_and_how(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    _, ids = audience(db, workspace_id, owner.actor, 1)
    with pytest.raises(ValidationFailed, match="exactly one"):
        _create(db, owner.actor)
    with pytest.raises(ValidationFailed, match="no content for channel 'sms'"):
        _create(db, owner.actor, customer_ids=ids, content={"wecom": {"text": "x"}})
    with pytest.raises(NotFound, match="no customer you can see"):
        _create(db, owner.actor, customer_ids=[ids[0], 10**12])
    with pytest.raises(ValidationFailed, match="compares with nothing"):
        _create(db, owner.actor, customer_ids=ids, variants={"a": {"content": CONTENT}})
    with pytest.raises(ValidationFailed, match="holdout share"):
        _create(db, owner.actor, customer_ids=ids, holdout_share=1.0)
    other = member(db, workspace_id, role="analyst")
    with pytest.raises(Exception, match="may not"):
        _create(db, other.actor, customer_ids=ids)


def test_phones_as_the_audience(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        from siyu.customers import service as customers

        first = customer(session, workspace_id=workspace_id, city="x")
        phones = [
            i.value
            for i in customers.list_identities(session, actor=owner.actor, customer_id=first)
            if i.kind == "phone"
        ]
    assert phones
    broadcast_id = _create(db, owner.actor, identity_kind="phone", identity_values=phones)
    with db.reader() as session:
        assert service.get_broadcast(session, actor=owner.actor, broadcast_id=broadcast_id).customer_ids == [
            first
        ]


def test_a_scheduled_broadcast_that_cannot_start_is_paused_and_the_others_go(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    gone_segment, _ = audience(db, workspace_id, owner.actor, 2)
    segment_id, ids = audience(db, workspace_id, owner.actor, 2)
    due = NOON + timedelta(hours=1)
    broken = _create(db, owner.actor, segment_id=gone_segment, send_at=due)
    fine = _create(db, owner.actor, segment_id=segment_id, send_at=due + timedelta(seconds=1))
    _start(db, owner.actor, broken)
    _start(db, owner.actor, fine)
    with db.transaction() as session:
        from siyu.segments import service as segments

        segments.delete_segment(session, actor=owner.actor, segment_id=gone_segment)
    tasks.run_due(db, now=due + timedelta(minutes=1))
    with db.reader() as session:
        assert service.get_broadcast(session, actor=owner.actor, broadcast_id=broken).status == "paused"
        assert service.get_broadcast(session, actor=owner.actor, broadcast_id=fine).status == "sending"
    assert sorted(m.customer_id for m in _messages(db, fine)) == sorted(ids)
    assert _messages(db, broken) == []


def test_content_is_personalised_and_tracked_link_clicks_are_counted(db: Database, workspace_id: int) -> None:
    from siyu.content import service as content

    owner = member(db, workspace_id)
    _, ids = audience(db, workspace_id, owner.actor, 3)
    text = "{{ name | default('朋友') }}，新品上市 {{ link('https://brand.example/menu') }}"
    broadcast_id = _create(
        db, owner.actor, customer_ids=ids, channel_preference=["sms"], content={"sms": {"text": text}}
    )
    _start(db, owner.actor, broadcast_id)
    tasks.run_due(db, now=NOON)
    messages = _messages(db, broadcast_id)
    assert len(messages) == 3
    bodies = [m.content["text"] for m in messages]
    assert all("{{" not in body and "/s/" in body for body in bodies)
    assert len({body.rsplit("/s/", 1)[1] for body in bodies}) == 3  # one token per message
    with db.reader() as session:
        assert service.results(session, actor=owner.actor, broadcast_id=broadcast_id).clicked == 0
    token = bodies[0].rsplit("/s/", 1)[1].split()[0]
    for _ in range(2):  # a second visit of the same link counts no second clicker
        with db.transaction() as session:
            assert content.follow(session, token=token) == "https://brand.example/menu"
    with db.reader() as session:
        found = service.results(session, actor=owner.actor, broadcast_id=broadcast_id)
    assert found.clicked == 1 and found.clicks_note == ""


def test_a_template_that_cannot_compile_is_refused_when_the_broadcast_is_created(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    _, ids = audience(db, workspace_id, owner.actor, 1)
    with pytest.raises(ValidationFailed) as refused:
        _create(
            db,
            owner.actor,
            customer_ids=ids,
            channel_preference=["sms"],
            content={"sms": {"text": "{{ name"}},
        )
    assert refused.value.where and refused.value.where.startswith("content.sms")
    with pytest.raises(ValidationFailed) as refused:
        _create(
            db,
            owner.actor,
            customer_ids=ids,
            channel_preference=["sms"],
            content={"sms": {"text": "A"}},
            variants={"B": {"content": {"sms": {"text": "{% for %}"}}}},
        )
    assert refused.value.where and refused.value.where.startswith("variants.B.content.sms")


def test_a_broadcast_issues_each_customer_its_coupon_once_and_the_content_carries_it(
    db: Database, workspace_id: int
) -> None:
    from siyu.coupons import service as coupons
    from siyu.coupons.models import Coupon, CouponType
    from siyu.coupons.schemas import TemplateIn

    owner = member(db, workspace_id)
    _, ids = audience(db, workspace_id, owner.actor, 4)
    with db.transaction() as session:
        template = coupons.create_template(
            session,
            actor=owner.actor,
            body=TemplateIn(name="回归券", type=CouponType.NO_THRESHOLD, discount_cents=500, valid_days=7),
        )
    broadcast_id = _create(
        db,
        owner.actor,
        customer_ids=ids,
        channel_preference=["sms"],
        content={"sms": {"text": "送你一张券：{{ coupon_code }}"}},
        coupon_template_id=template.id,
    )
    _start(db, owner.actor, broadcast_id)
    tasks.run_due(db, now=NOON)
    with db.transaction() as session:  # a repeated round (a crash, a retry) issues nothing more
        service.decide_next(session, workspace_id=workspace_id, broadcast_id=broadcast_id, now=NOON)
    with db.reader() as session:
        issued = {
            c.customer_id: c.code
            for c in session.scalars(select(Coupon).where(Coupon.template_id == template.id))
        }
        total = len(list(session.scalars(select(Coupon.id).where(Coupon.template_id == template.id))))
    assert set(issued) == set(ids) and total == len(ids)
    texts = {m.customer_id: m.content["text"] for m in _messages(db, broadcast_id)}
    assert texts == {c: f"送你一张券：{issued[c]}" for c in ids}
    with pytest.raises(NotFound):
        _create(db, owner.actor, customer_ids=ids, coupon_template_id=10**9)


def test_statistics_are_refreshed_as_a_large_broadcast_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past 5k, 20k, 80k… decided messages (once each), the outbox's statistics are refreshed."""
    from siyu.broadcasts import service as broadcasts_service

    analysed: list[str] = []

    class Session:
        def execute(self, statement: object) -> None:
            analysed.append(str(statement))

    monkeypatch.setattr(broadcasts_service, "is_postgres", lambda session: True)
    decided = 0
    for chunk in [2_000] * 60:
        broadcasts_service._analyse_if_grown(Session(), before=decided, after=decided + chunk)  # type: ignore[arg-type]
        decided += chunk
    assert analysed == ["ANALYZE reach_message", "ANALYZE reach_contact"] * 3  # at 6k, 20k, 80k
