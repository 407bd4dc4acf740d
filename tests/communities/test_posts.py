"""Scheduled group posts (群SOP) against the fake WeCom: occurrences opened by the worker at the local
time of day, one group mass message per owner (chat_type group), never twice per occurrence, the
groups reached read back from the send results, missed and refused occurrences."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from siyu.communities import posts, service
from siyu.communities.tasks import run_group_posts
from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.wecom import tasks as wecom_tasks
from tests.communities.helpers import chat, store
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom

ADD = "/cgi-bin/externalcontact/add_msg_template"
# 11:00 in Asia/Shanghai (UTC+8, no DST) is 03:00 UTC
DAY = date(2026, 12, 3)
ELEVEN = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def _groups(db: Database, corp: Corp, fake: FakeWecom) -> dict[str, str]:
    """Three store groups tagged 门店群 (two of zhangsan, one of lisi) and one untagged of zhangsan."""
    ids = {}
    with db.transaction() as session:
        for key, owner, tagged in (
            ("a", "zhangsan", True),
            ("b", "zhangsan", True),
            ("c", "lisi", True),
            ("d", "zhangsan", False),
        ):
            answer = chat(f"门店{key}", [f"wm{key}"], owner=owner)
            chat_id = store(session, corp.workspace_id, answer)
            fake.group_chats[chat_id] = {k: v for k, v in answer.items() if k != "chat_id"}
            if tagged:
                service.add_tag(session, actor=corp.owner.actor, chat_id=chat_id, name="门店群")
            ids[key] = chat_id
    return ids


def _daily(db: Database, corp: Corp, **overrides: Any) -> int:
    spec = {
        "name": "每日菜单",
        "text": "今日午餐：红烧肉饭",
        "attachments": [{"msgtype": "image", "image": {"pic_url": "https://example.com/menu.jpg"}}],
        "target": "tags",
        "target_values": ["门店群"],
        "repeat": "daily",
        "time_of_day": "11:00",
        "weekdays": [],
        "start_on": DAY,
        **overrides,
    }
    with db.transaction() as session:
        post = posts.create_post(
            session, actor=corp.owner.actor, spec=posts.PostSpec(**spec), now=ELEVEN - timedelta(hours=2)
        )
        return post.id


CARD = {"msgtype": "miniprogram", "miniprogram": {"title": "点单", "appid": "wx123", "page": "pages/menu"}}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _sends(fake: FakeWecom) -> list[dict[str, Any]]:
    return [body for path, body in fake.calls if path == ADD]


def test_a_daily_post_at_eleven_sends_once_per_owner_per_day(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    groups = _groups(db, corp, fake)
    post_id = _daily(db, corp)
    with db.reader() as session:
        assert posts.get_post(session, workspace_id=corp.workspace_id, post_id=post_id).next_at == ELEVEN

    assert run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN - timedelta(minutes=1)) == 0
    assert _sends(fake) == []

    assert run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN) == 2
    bodies = sorted(_sends(fake), key=lambda b: b["sender"])
    assert [(b["chat_type"], b["sender"], sorted(b["chat_id_list"])) for b in bodies] == [
        ("group", "lisi", [groups["c"]]),
        ("group", "zhangsan", sorted([groups["a"], groups["b"]])),  # the untagged group is left out
    ]
    assert bodies[0]["text"] == {"content": "今日午餐：红烧肉饭"}
    assert bodies[0]["attachments"][0]["image"]["pic_url"] == "https://example.com/menu.jpg"

    # the same minute again, and a second worker at once: nothing more
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN + timedelta(seconds=30)) == 0
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN + timedelta(seconds=30)) == 0
    assert len(_sends(fake)) == 2

    with db.reader() as session:
        post = posts.get_post(session, workspace_id=corp.workspace_id, post_id=post_id)
        assert post.next_at == ELEVEN + timedelta(days=1)
        assert (
            posts.local_time(session, workspace_id=corp.workspace_id, at=post.next_at) == "2026-12-04 11:00"
        )
        [first] = posts.occurrences(session, workspace_id=corp.workspace_id, post_id=post_id)
        assert first.occurrence.status == "sent" and first.groups_planned == 3 and first.groups_reached == 0
        actions = list(
            session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.workspace_id == corp.workspace_id,
                    AuditEntry.action.like("community.group_post%"),
                )
            )
        )
    assert sorted(actions) == ["community.group_post_created"] + ["community.group_post_sent"] * 2

    # zhangsan confirms the task in WeCom; the WeCom follow-up reads which groups it reached
    message = next(m for m in fake.mass_messages.values() if "zhangsan" in m["recipients"])
    message["sent"].add("zhangsan")
    wecom_tasks.follow_up(db, workspace_id=corp.workspace_id, now=ELEVEN + timedelta(minutes=10))
    with db.reader() as session:
        [first] = posts.occurrences(session, workspace_id=corp.workspace_id, post_id=post_id)
    by_owner = {o.owner: o for o in first.owners}
    assert by_owner["zhangsan"].owner_sent and by_owner["zhangsan"].groups == {groups["a"]: 1, groups["b"]: 1}
    assert not by_owner["lisi"].owner_sent and by_owner["lisi"].groups == {groups["c"]: 0}
    assert first.groups_reached == 2

    # the next day at 11:00 it goes again
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN + timedelta(days=1, seconds=5)) == 2
    assert len(_sends(fake)) == 4
    with db.reader() as session:
        assert len(posts.occurrences(session, workspace_id=corp.workspace_id, post_id=post_id)) == 2


def test_two_workers_at_once_send_an_occurrence_once(db: Database, corp: Corp, fake: FakeWecom) -> None:
    _groups(db, corp, fake)
    _daily(db, corp)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(b["sender"] for b in _sends(fake)) == ["lisi", "zhangsan"]


def test_by_owner_weekly_and_a_late_worker_misses_instead_of_sending(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    groups = _groups(db, corp, fake)
    # 2026-12-03 is a Thursday (3): weekly on Mondays and Thursdays, to every group of zhangsan
    post_id = _daily(db, corp, repeat="weekly", weekdays=[0, 3], target="owners", target_values=["zhangsan"])
    late = ELEVEN + posts.GRACE + timedelta(minutes=1)
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=late) == 0
    assert _sends(fake) == []
    with db.reader() as session:
        [missed] = posts.occurrences(session, workspace_id=corp.workspace_id, post_id=post_id)
        assert missed.occurrence.status == "missed"
        monday = posts.get_post(session, workspace_id=corp.workspace_id, post_id=post_id).next_at
    assert monday == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=monday) == 1
    [body] = _sends(fake)
    assert body["sender"] == "zhangsan" and sorted(body["chat_id_list"]) == sorted(
        [groups["a"], groups["b"], groups["d"]]
    )


def test_an_owner_wecom_refuses_is_kept_and_the_others_still_go(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    _groups(db, corp, fake)
    fake.staff.discard("lisi")  # lisi left the corp: add_msg_template answers 40003 for them
    post_id = _daily(db, corp, repeat="once")
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN) == 2
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN + timedelta(minutes=1)) == 0
    with db.reader() as session:
        [occurrence] = posts.occurrences(session, workspace_id=corp.workspace_id, post_id=post_id)
        post = posts.get_post(session, workspace_id=corp.workspace_id, post_id=post_id)
    assert occurrence.occurrence.status == "partial" and post.next_at is None
    errors = {o.owner: o.error for o in occurrence.owners}
    assert errors["zhangsan"] is None and "40003" in (errors["lisi"] or "")
    assert sorted(b["sender"] for b in _sends(fake)) == ["lisi", "zhangsan"]  # lisi's refusal is not retried


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"name": " "}, "name"),
        ({"target": "everyone"}, "target"),
        ({"target_values": []}, "target_values"),
        ({"repeat": "weekly", "weekdays": []}, "weekdays"),
        ({"time_of_day": "25:00"}, "time_of_day"),
        ({"text": "", "attachments": []}, "text"),
        ({"repeat": "once", "start_on": date(2026, 12, 2)}, "start_on"),
        ({"attachments": [CARD]}, "cover"),  # a mini-program card without its cover image
        ({"cover": ("menu.gif", b"GIF89a......")}, "cover"),  # a cover, but no card, and not JPG/PNG
        ({"attachments": [CARD], "cover": ("menu.gif", b"GIF89a......")}, "cover"),
    ],
)
def test_a_post_that_cannot_go_is_refused_with_where(
    db: Database, corp: Corp, overrides: dict[str, Any], where: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _daily(db, corp, **overrides)
    assert refused.value.where == where


def test_a_daily_mini_program_card_gets_a_cover_media_id_younger_than_three_days(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    """WeCom forgets a temporary media_id after 3 days: the kept cover is uploaded for the first send,
    reused while under 2.5 days old, and uploaded again before the send that would find it stale."""
    _groups(db, corp, fake)
    _daily(db, corp, attachments=[CARD], cover=("menu.png", PNG))
    covers = []
    for day in range(5):
        assert run_group_posts(db, workspace_id=corp.workspace_id, now=ELEVEN + timedelta(days=day)) == 2
        cards = [b["attachments"][0]["miniprogram"] for b in _sends(fake)[-2:]]
        assert {c["appid"] for c in cards} == {"wx123"}
        covers.append({c["pic_media_id"] for c in cards})
    assert all(len(c) == 1 for c in covers)  # both owners' sends of a day carry the same media_id
    ids = [next(iter(c)) for c in covers]
    # uploaded on day 0, reused on days 1 and 2 (< 2.5 days), again on day 3, reused on day 4
    assert ids[0] == ids[1] == ids[2] != ids[3] == ids[4]
    assert fake.uploads == [ids[0], ids[3]]
    upload_calls = [path for path, _ in fake.calls if path == "/cgi-bin/media/upload"]
    assert len(upload_calls) == 2
