"""The group post (群SOP) and moments (朋友圈) pages in zh-CN and English: a post created from the form
and listed with its next occurrence, a refused form saying why, a post's occurrences with each owner's
send; a moment created from the form with three uploaded images and a tag range, and its page with
each staff member's publish status."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.communities import posts, service
from siyu.communities.tasks import run_group_posts
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.wecom import service as wecom
from siyu.wecom import tasks as wecom_tasks
from tests.communities.helpers import chat, png, store
from tests.web.conftest import log_in, make_login
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom


def _group(db: Database, corp: Corp, fake: FakeWecom, name: str = "静安店群") -> str:
    answer = chat(name, ["wmP1"])
    with db.transaction() as session:
        chat_id = store(session, corp.workspace_id, answer)
        service.add_tag(session, actor=corp.owner.actor, chat_id=chat_id, name="门店群")
    fake.group_chats[chat_id] = {k: v for k, v in answer.items() if k != "chat_id"}
    return chat_id


def test_a_group_post_from_the_form_listed_sent_and_shown(
    client: TestClient, db: Database, corp: Corp, fake: FakeWecom
) -> None:
    chat_id = _group(db, corp, fake)
    token = log_in(client, make_login(db, corp.workspace_id, Role.OWNER))
    empty = client.get("/group-posts")
    assert empty.status_code == 200 and "群SOP（定时群发）" in empty.text and "静安店群" in empty.text
    assert "Group posts (群SOP)" in client.get("/group-posts", headers={"Accept-Language": "en"}).text
    refused = client.post(
        "/group-posts",
        data={
            "csrf_token": token,
            "name": "每日菜单",
            "text": "午餐",
            "target": "groups",
            "repeat": "daily",
            "time_of_day": "11:00",
            "start_on": "2026-12-03",
        },
    )
    assert refused.status_code == 422 and "target_values" in refused.text
    with db.reader() as session:
        start = posts.local_today(session, workspace_id=corp.workspace_id) + timedelta(days=1)
    made = client.post(
        "/group-posts",
        data={
            "csrf_token": token,
            "name": "每日菜单",
            "text": "今日午餐",
            "image_url": "https://example.com/m.jpg",
            "target": "groups",
            "target_groups": chat_id,
            "repeat": "daily",
            "time_of_day": "11:00",
            "start_on": start.isoformat(),
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    listed = client.get("/group-posts").text
    assert "每日菜单" in listed and f"{start.isoformat()} 11:00" in listed
    post_id = int(made.headers["location"].split("/")[2].split("?")[0])
    with db.reader() as session:
        post = posts.get_post(session, workspace_id=corp.workspace_id, post_id=post_id)
        assert post.attachments == [{"msgtype": "image", "image": {"pic_url": "https://example.com/m.jpg"}}]
        due = post.next_at
    assert due is not None
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=due) == 1
    shown = client.get(f"/group-posts/{post_id}").text
    assert "已创建群发" in shown and "待群主确认" in shown and "静安店群" in shown
    paused = client.post(
        f"/group-posts/{post_id}/active",
        data={"csrf_token": token, "active": "0"},
        follow_redirects=False,
    )
    assert paused.status_code == 303
    assert "已暂停" in client.get("/group-posts").text


def test_a_mini_program_card_takes_its_cover_as_an_uploaded_image(
    client: TestClient, db: Database, corp: Corp, fake: FakeWecom
) -> None:
    chat_id = _group(db, corp, fake)
    token = log_in(client, make_login(db, corp.workspace_id, Role.OWNER))
    with db.reader() as session:
        start = posts.local_today(session, workspace_id=corp.workspace_id) + timedelta(days=1)
    form = {
        "csrf_token": token,
        "name": "点单小程序",
        "text": "今天来一杯？",
        "mp_title": "点单",
        "mp_appid": "wx123",
        "mp_page": "pages/menu",
        "target": "groups",
        "target_groups": chat_id,
        "repeat": "daily",
        "time_of_day": "11:00",
        "start_on": start.isoformat(),
    }
    missing = client.post("/group-posts", data=form)
    assert missing.status_code == 422 and "cover" in missing.text
    wrong = client.post(
        "/group-posts", data=form, files={"mp_cover": ("c.gif", b"GIF89a-not-a-png", "image/gif")}
    )
    assert wrong.status_code == 422 and "c.gif" in wrong.text
    made = client.post(
        "/group-posts",
        data=form,
        files={"mp_cover": ("cover.png", png(), "image/png")},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    post_id = int(made.headers["location"].split("/")[2].split("?")[0])
    with db.reader() as session:
        post = posts.get_post(session, workspace_id=corp.workspace_id, post_id=post_id)
        assert post.cover_image == png() and post.cover_media_id is None
        due = post.next_at
    assert due is not None
    assert run_group_posts(db, workspace_id=corp.workspace_id, now=due) == 1
    [body] = [b for path, b in fake.calls if path == "/cgi-bin/externalcontact/add_msg_template"]
    assert body["attachments"][0]["miniprogram"]["pic_media_id"] == fake.uploads[-1]


def test_a_moment_from_the_form_with_three_images_and_a_tag_range(
    client: TestClient, db: Database, corp: Corp, fake: FakeWecom
) -> None:
    fake.corp_tags = [{"group_id": "etG", "group_name": "会员", "tag": [{"id": "etGold", "name": "金卡"}]}]
    with db.transaction() as session:
        wecom.sync_corp_tags(session, actor=corp.owner.actor)
        [(gold, _g, _n)] = wecom.corp_tags(session, workspace_id=corp.workspace_id)
    token = log_in(client, make_login(db, corp.workspace_id, Role.OWNER))
    assert "Moments (朋友圈)" in client.get("/moments", headers={"Accept-Language": "en"}).text
    files = [("images", (f"p{i}.png", png(), "image/png")) for i in range(3)]
    made = client.post(
        "/moments",
        data={"csrf_token": token, "text": "冬季新品", "tags": str(gold), "senders": ["zhangsan", "lisi"]},
        files=files,
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    [body] = [b for p, b in fake.calls if p == "/cgi-bin/externalcontact/add_moment_task"]
    assert [a["image"]["media_id"] for a in body["attachments"]] == fake.uploads and len(fake.uploads) == 3
    assert body["visible_range"] == {
        "sender_list": {"user_list": ["zhangsan", "lisi"]},
        "external_contact_list": {"tag_list": ["etGold"]},
    }
    location = made.headers["location"].split("?")[0]
    assert "已提交" in client.get(location).text
    now = utcnow()
    wecom_tasks.follow_up(db, workspace_id=corp.workspace_id, now=now)
    wecom_tasks.follow_up(db, workspace_id=corp.workspace_id, now=now + timedelta(minutes=1))
    shown = client.get(location).text
    assert "已创建" in shown and 'data-staff="zhangsan"' in shown and "未发表" in shown
    assert "0 / 2" in client.get("/moments").text
    too_many = client.post(
        "/moments",
        data={"csrf_token": token, "text": "x"},
        files=[("images", (f"p{i}.png", png(), "image/png")) for i in range(10)],
    )
    assert too_many.status_code == 422 and "at most 9" in too_many.text


def test_a_moment_from_the_form_with_a_video_and_not_with_images_too(
    client: TestClient, db: Database, corp: Corp, fake: FakeWecom
) -> None:
    token = log_in(client, make_login(db, corp.workspace_id, Role.OWNER))
    mp4 = ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "video/mp4")
    made = client.post(
        "/moments",
        data={"csrf_token": token, "text": "新品视频"},
        files=[("video", mp4)],
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    [body] = [b for p, b in fake.calls if p == "/cgi-bin/externalcontact/add_moment_task"]
    assert body["attachments"] == [{"msgtype": "video", "video": {"media_id": fake.uploads[0]}}]
    both = client.post(
        "/moments",
        data={"csrf_token": token, "text": "x"},
        files=[("video", mp4), ("images", ("p.png", png(), "image/png"))],
    )
    assert both.status_code == 422 and "not several kinds" in both.text
