"""Recording a history of WeCom friendships at once (`record_friendships`): follows, events, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import ValidationFailed
from siyu.wecom import service as wecom
from siyu.wecom.models import WecomFollow, WecomStaff
from tests.factories import make_customer

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def history() -> list[wecom.FriendshipRecord]:
    return [
        wecom.FriendshipRecord("zhang", "wmA", T0),
        wecom.FriendshipRecord("zhang", "wmB", T0, T0 + timedelta(days=40), "customer"),
        wecom.FriendshipRecord("li", "wmB", T0 + timedelta(days=2), T0 + timedelta(days=9), "staff"),
        wecom.FriendshipRecord("li", "wmStranger", T0, state="lc-1"),
    ]


def test_a_history_becomes_follows_spans_and_the_callbacks_events(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        a = make_customer(session, workspace_id=workspace_id, identities={"wecom_external_userid": "wmA"}).id
        b = make_customer(session, workspace_id=workspace_id, identities={"wecom_external_userid": "wmB"}).id
        assert wecom.record_friendships(session, workspace_id=workspace_id, friendships=history()) == 4
    with db.reader() as session:
        follows = {
            (f.wecom_userid, f.external_userid): (
                f.customer_id,
                f.added_at,
                f.removed_at,
                f.removed_by,
                f.state,
            )
            for f in session.scalars(select(WecomFollow).where(WecomFollow.workspace_id == workspace_id))
        }
        assert follows == {
            ("zhang", "wmA"): (a, T0, None, None, None),
            ("zhang", "wmB"): (b, T0, T0 + timedelta(days=40), "customer", None),
            ("li", "wmB"): (b, T0 + timedelta(days=2), T0 + timedelta(days=9), "staff", None),
            ("li", "wmStranger"): (None, T0, None, None, "lc-1"),
        }
        spans = session.execute(wecom.friend_spans(workspace_id=workspace_id)).all()
        assert sorted((c, f, u) for c, f, u in spans) == sorted(
            [
                (a, T0, None),
                (b, T0, T0 + timedelta(days=40)),
                (b, T0 + timedelta(days=2), T0 + timedelta(days=9)),
            ]
        )
        assert wecom.is_friend(session, workspace_id=workspace_id, customer_ids=[a, b]) == {a}
        events = sorted(
            [
                (e.type, e.customer_id, e.occurred_at)
                for e in session.scalars(select(DomainEvent).where(DomainEvent.workspace_id == workspace_id))
                if e.type.startswith("wecom.")
            ],
            key=repr,
        )
        assert events == sorted(
            [
                ("wecom.friend_added", a, T0),
                ("wecom.friend_added", b, T0),
                ("wecom.friend_added", b, T0 + timedelta(days=2)),
                ("wecom.friend_added", None, T0),
                ("wecom.staff_deleted", b, T0 + timedelta(days=40)),
                ("wecom.friend_deleted", b, T0 + timedelta(days=9)),
            ],
            key=repr,
        )
        staff = set(
            session.scalars(select(WecomStaff.wecom_userid).where(WecomStaff.workspace_id == workspace_id))
        )
        assert staff == {"zhang", "li"}
        audit = session.scalars(
            select(AuditEntry.detail).where(
                AuditEntry.workspace_id == workspace_id, AuditEntry.action == "wecom.friendships_recorded"
            )
        ).all()
        assert audit == [{"recorded": 4, "ended": 2, "already_known": 0}]


def test_recording_the_same_history_twice_changes_nothing(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        wecom.record_friendships(session, workspace_id=workspace_id, friendships=history())

    def rows() -> tuple[int, int]:
        with db.reader() as session:
            follows = session.scalars(
                select(WecomFollow.id).where(WecomFollow.workspace_id == workspace_id)
            ).all()
            events = session.scalars(
                select(DomainEvent.id).where(DomainEvent.workspace_id == workspace_id)
            ).all()
            return len(follows), len(events)

    before = rows()
    with db.transaction() as session:
        assert wecom.record_friendships(session, workspace_id=workspace_id, friendships=history()) == 0
    assert rows() == before


@pytest.mark.parametrize(
    ("record", "where"),
    [
        (wecom.FriendshipRecord("", "wmA", T0), "friendships[1].wecom_userid"),
        (
            wecom.FriendshipRecord("zhang", "wmA", T0, T0 - timedelta(days=1), "customer"),
            "friendships[1].removed_at",
        ),
        (
            wecom.FriendshipRecord("zhang", "wmA", T0, T0 + timedelta(days=1), "nobody"),
            "friendships[1].removed_by",
        ),
        (wecom.FriendshipRecord("zhang", "wmA", T0, removed_by="staff"), "friendships[1].removed_by"),
        (wecom.FriendshipRecord("zhang", "wmA", T0.replace(tzinfo=None)), "friendships[1].added_at"),
    ],
)
def test_a_bad_record_is_refused_and_nothing_is_written(
    db: Database, workspace_id: int, record: wecom.FriendshipRecord, where: str
) -> None:
    with pytest.raises(ValidationFailed) as refused, db.transaction() as session:
        wecom.record_friendships(
            session, workspace_id=workspace_id, friendships=[wecom.FriendshipRecord("li", "wmB", T0), record]
        )
    assert refused.value.where == where
    with db.reader() as session:
        assert (
            session.scalars(select(WecomFollow.id).where(WecomFollow.workspace_id == workspace_id)).all()
            == []
        )
