"""Activity (群活跃度) from WeCom's daily group figures, fetched from the fake WeCom: messages and the
shares of active groups and members over a period, per day and per owner, and the list page's chart,
table and CSV in both languages."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.communities import stats
from siyu.core.db import Database
from siyu.web.app import create_app
from siyu.wecom import service as wecom
from tests.communities.helpers import chat, store
from tests.factories import api_client
from tests.web.conftest import log_in, make_login
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom


def _day(chats: int, active: int, members: int, spoke: int, messages: int) -> dict[str, int]:
    return {
        "new_chat_cnt": 0,
        "chat_total": chats,
        "chat_has_msg_cnt": active,
        "new_member_cnt": 1,
        "member_total": members,
        "member_has_msg_cnt": spoke,
        "msg_total": messages,
        "migrate_trainee_chat_cnt": 0,
    }


def _fetched(db: Database, corp: Corp, fake: FakeWecom) -> tuple[date, date]:
    """Three days for two owners; the middle day WeCom counted nothing (all zeros)."""
    yesterday = wecom.wecom_yesterday()
    first = yesterday - timedelta(days=2)
    fake.group_stats[(first, "zhangsan")] = _day(4, 2, 40, 10, 100)
    fake.group_stats[(first, "lisi")] = _day(6, 3, 60, 5, 50)
    fake.group_stats[(yesterday, "zhangsan")] = _day(4, 4, 40, 20, 300)
    fake.group_stats[(yesterday, "lisi")] = _day(6, 0, 60, 0, 0)
    with db.transaction() as session:
        store(session, corp.workspace_id, chat("张三的群", ["wmA1"], owner="zhangsan"))
        store(session, corp.workspace_id, chat("李四的群", ["wmB1"], owner="lisi"))
        wecom.fetch_group_stats(
            session, workspace_id=corp.workspace_id, days=wecom.day_range(first, yesterday)
        )
    return first, yesterday


def test_activity_by_period_day_and_owner(db: Database, corp: Corp, fake: FakeWecom) -> None:
    first, yesterday = _fetched(db, corp, fake)
    with db.reader() as session:
        found = stats.activity(
            session, workspace_id=corp.workspace_id, start=first - timedelta(days=1), end=yesterday
        )
    total = found.total
    assert (total.messages, total.groups_with_messages, total.groups) == (450, 9, 20)
    assert (total.members_who_spoke, total.members) == (35, 200)
    assert (total.group_share, total.member_share) == (0.45, 0.175)
    assert [(d.day, d.messages, d.group_share, d.member_share) for d in found.days] == [
        (first - timedelta(days=1), 0, None, None),  # before anything was fetched
        (first, 150, 0.5, 0.15),
        (first + timedelta(days=1), 0, None, None),  # WeCom counted no group that day
        (yesterday, 300, 0.4, 0.2),
    ]
    zhang, li = found.owners  # most messages first
    assert (zhang.owner, zhang.messages, zhang.group_share, zhang.member_share) == (
        "zhangsan",
        400,
        0.75,
        0.375,
    )
    assert (li.owner, li.messages, li.group_share) == ("lisi", 50, 0.25)
    assert li.member_share is not None and abs(li.member_share - 5 / 120) < 1e-9
    answer = api_client(db).get(
        f"/api/communities/activity?start={first.isoformat()}&end={yesterday.isoformat()}",
        headers=corp.owner.headers,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"]["messages"], body["total"]["group_share"]) == (450, 0.45)
    assert [d["messages"] for d in body["days"]] == [150, 0, 300]
    assert [o["owner"] for o in body["owners"]] == ["zhangsan", "lisi"]


def test_the_list_page_shows_activity_in_both_languages_with_csv(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    first, yesterday = _fetched(db, corp, fake)
    who = make_login(db, corp.workspace_id, Role.OWNER)
    client = TestClient(create_app(database=db))
    log_in(client, who)
    period = f"start={first.isoformat()}&end={yesterday.isoformat()}"
    for lang, words in (
        ("zh-CN", ["群活跃度", "活跃群占比", "活跃成员占比", "按群主"]),
        ("en", ["Community activity (群活跃度)", "Active groups", "Active members", "By owner"]),
    ):
        client.cookies.set("lang", lang)
        page = client.get(f"/communities?{period}")
        assert page.status_code == 200, page.text
        assert all(w in page.text for w in words), lang
        totals = page.text.split('id="activity-totals"')[1].split('id="activity-chart"')[0]
        assert "450" in totals and "45.0%" in totals and "9 / 20" in totals
        assert "17.5%" in totals and "35 / 200" in totals
        owners = page.text.split('id="activity-owners"')[1].split("</table>")[0]
        assert owners.index('data-owner="zhangsan"') < owners.index('data-owner="lisi"')
        assert "75.0%" in owners and "37.5%" in owners
    data = json.loads(page.text.split('id="activity-data">')[1].split("</script>")[0])
    assert data["messages"] == [150, 0, 300]
    assert data["group_share"] == [50.0, None, 40.0] and data["member_share"] == [15.0, None, 20.0]
    by_day = client.get(f"/communities/activity.csv?by=day&{period}")
    rows = list(csv.reader(io.StringIO(by_day.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["day", "messages", "groups"] and len(rows) == 4
    assert rows[1] == [first.isoformat(), "150", "10", "5", "0.5000", "100", "15", "0.1500"]
    assert rows[2][4] == ""  # no share without groups
    by_owner = client.get(f"/communities/activity.csv?by=owner&{period}")
    owner_rows = list(csv.reader(io.StringIO(by_owner.content.decode("utf-8-sig"))))
    assert [r[0] for r in owner_rows] == ["owner", "zhangsan", "lisi"]
    assert client.get(f"/communities/activity.csv?by=nope&{period}").status_code == 422


def test_the_list_page_says_when_there_are_no_figures(db: Database, workspace_id: int) -> None:
    who = make_login(db, workspace_id, Role.OWNER)
    client = TestClient(create_app(database=db))
    log_in(client, who)
    page = client.get("/communities")
    assert page.status_code == 200
    assert 'id="activity-none"' in page.text and 'id="activity-chart"' not in page.text
