"""The groups' daily figures (群聊数据统计) fetched from the fake WeCom: stored per day and owner,
overwritten on a re-fetch, asked one day and ≤100 owners a call, the daily job and `siyu wecom
group-stats`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.wecom import service as wecom
from siyu.wecom import tasks
from siyu.wecom.client import WecomApiError
from siyu.wecom.models import WecomGroupStat
from siyu.wecom.service import group_stats
from siyu.wecom.service.group_stats import STAT_PATH
from siyu.workspaces import service as workspaces
from tests.communities.helpers import chat, store
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import STAT_ZONE, FakeWecom

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing: WeCom's yesterday is 2026-12-01
YESTERDAY = date(2026, 12, 1)


def _figures(n: int) -> dict[str, int]:
    return {
        "new_chat_cnt": n,
        "chat_total": 10 * n,
        "chat_has_msg_cnt": 4 * n,
        "new_member_cnt": 2 * n,
        "member_total": 100 * n,
        "member_has_msg_cnt": 30 * n,
        "msg_total": 500 * n,
        "migrate_trainee_chat_cnt": 0,
    }


def _owners(db: Database, workspace_id: int, *owners: str) -> None:
    with db.transaction() as session:
        for owner in owners:
            store(session, workspace_id, chat(f"{owner}的群", ["wmA"], owner=owner))


def _rows(db: Database, workspace_id: int) -> dict[tuple[date, str], dict[str, int]]:
    with db.reader() as session:
        return {
            (row.day, row.owner): {
                k: getattr(row, k)
                for k in ("chat_total", "chat_has_msg_cnt", "member_has_msg_cnt", "msg_total")
            }
            for row in session.scalars(
                select(WecomGroupStat).where(WecomGroupStat.workspace_id == workspace_id)
            )
        }


def _stat_calls(fake: FakeWecom) -> list[dict[str, object]]:
    return [body for path, body in fake.calls if path == STAT_PATH]


def test_a_fetch_stores_each_owner_and_day_and_a_refetch_overwrites(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    fake.stat_today = YESTERDAY + timedelta(days=1)
    _owners(db, corp.workspace_id, "zhangsan", "lisi")
    two_days = [YESTERDAY - timedelta(days=1), YESTERDAY]
    for day in two_days:
        fake.group_stats[(day, "zhangsan")] = _figures(1)
        fake.group_stats[(day, "lisi")] = _figures(2)
    fake.group_stats[(YESTERDAY, "wangwu")] = _figures(9)  # not an owner of a synced group: not asked
    with db.transaction() as session:
        got = wecom.fetch_group_stats(session, workspace_id=corp.workspace_id, days=two_days, now=NOW)
    assert (got.days, got.owners, got.rows, got.calls) == (2, 2, 4, 2)
    first = _stat_calls(fake)[0]
    midnight = int(datetime(2026, 11, 30, tzinfo=STAT_ZONE).timestamp())
    assert first["day_begin_time"] == first["day_end_time"] == midnight
    assert first["owner_filter"] == {"userid_list": ["lisi", "zhangsan"]}
    rows = _rows(db, corp.workspace_id)
    assert set(rows) == {(d, o) for d in two_days for o in ("zhangsan", "lisi")}
    assert rows[(YESTERDAY, "lisi")] == {
        "chat_total": 20,
        "chat_has_msg_cnt": 8,
        "member_has_msg_cnt": 60,
        "msg_total": 1000,
    }

    fake.group_stats[(YESTERDAY, "lisi")] = _figures(3)  # WeCom's figure of the day was revised
    with db.transaction() as session:
        wecom.fetch_group_stats(session, workspace_id=corp.workspace_id, days=[YESTERDAY], now=NOW)
    again = _rows(db, corp.workspace_id)
    assert len(again) == 4
    assert again[(YESTERDAY, "lisi")]["msg_total"] == 1500
    assert again[(YESTERDAY, "zhangsan")]["msg_total"] == 500


def test_a_range_beyond_30_days_is_asked_a_day_at_a_time(db: Database, corp: Corp, fake: FakeWecom) -> None:
    fake.stat_today = YESTERDAY + timedelta(days=1)
    _owners(db, corp.workspace_id, "zhangsan")
    days = wecom.day_range(YESTERDAY - timedelta(days=44), YESTERDAY)
    for n, day in enumerate(days):
        fake.group_stats[(day, "zhangsan")] = _figures(n + 1)
    with db.transaction() as session:
        got = wecom.fetch_group_stats(session, workspace_id=corp.workspace_id, days=days, now=NOW)
    assert (got.rows, got.calls) == (45, 45)
    assert all(body["day_begin_time"] == body["day_end_time"] for body in _stat_calls(fake))
    assert _rows(db, corp.workspace_id)[(days[0], "zhangsan")]["msg_total"] == 500
    # WeCom itself refuses a span over 30 days (and so does the fake): the reason not to ask one
    with (
        db.reader() as session,
        wecom.client_for(session, workspace_id=corp.workspace_id) as client,
        pytest.raises(WecomApiError) as refused,
    ):
        client.post(
            STAT_PATH,
            {
                "day_begin_time": int(datetime(2026, 10, 1, tzinfo=STAT_ZONE).timestamp()),
                "day_end_time": int(datetime(2026, 10, 31, tzinfo=STAT_ZONE).timestamp()),
            },
        )
    assert refused.value.errcode == 600018


def test_days_wecom_cannot_answer_are_refused_before_asking(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    _owners(db, corp.workspace_id, "zhangsan")
    with db.transaction() as session:
        with pytest.raises(ValidationFailed, match="no group figures"):
            wecom.fetch_group_stats(
                session, workspace_id=corp.workspace_id, days=[YESTERDAY + timedelta(days=1)], now=NOW
            )
        with pytest.raises(ValidationFailed, match="180 days"):
            wecom.fetch_group_stats(
                session, workspace_id=corp.workspace_id, days=[YESTERDAY - timedelta(days=180)], now=NOW
            )
    assert _stat_calls(fake) == []


def test_owners_are_asked_a_hundred_at_a_time(db: Database, corp: Corp, fake: FakeWecom) -> None:
    fake.stat_today = YESTERDAY + timedelta(days=1)
    owners = [f"staff{i:03d}" for i in range(150)]
    _owners(db, corp.workspace_id, *owners)
    for owner in owners:
        fake.group_stats[(YESTERDAY, owner)] = _figures(1)
    with db.transaction() as session:
        got = wecom.fetch_group_stats(session, workspace_id=corp.workspace_id, days=[YESTERDAY], now=NOW)
    assert (got.rows, got.calls) == (150, 2)
    sizes = [len(body["owner_filter"]["userid_list"]) for body in _stat_calls(fake)]  # type: ignore[index]
    assert sizes == [100, 50]


def test_pages_are_followed_by_offset(
    db: Database, corp: Corp, fake: FakeWecom, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.stat_today = YESTERDAY + timedelta(days=1)
    owners = [f"staff{i:03d}" for i in range(150)]
    _owners(db, corp.workspace_id, *owners)
    for n, owner in enumerate(owners):
        fake.group_stats[(YESTERDAY, owner)] = _figures(n + 1)
    monkeypatch.setattr(group_stats, "PAGE", 40)  # pages smaller than a batch of owners
    with db.transaction() as session:
        got = wecom.fetch_group_stats(session, workspace_id=corp.workspace_id, days=[YESTERDAY], now=NOW)
    assert (got.rows, got.calls) == (150, 5)  # 100 owners in pages of 40, 40, 20; 50 in 40, 10
    assert [(b["offset"], b["limit"]) for b in _stat_calls(fake)] == [
        (0, 40),
        (40, 40),
        (80, 40),
        (0, 40),
        (40, 40),
    ]
    rows = _rows(db, corp.workspace_id)
    assert len(rows) == 150 and rows[(YESTERDAY, "staff149")]["msg_total"] == 500 * 150


def test_the_daily_job_fetches_yesterday_and_fills_the_week(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    fake.stat_today = YESTERDAY + timedelta(days=1)
    _owners(db, corp.workspace_id, "zhangsan")
    for i in range(10):
        fake.group_stats[(YESTERDAY - timedelta(days=i), "zhangsan")] = _figures(i + 1)
    with db.transaction() as session:  # one day of the week is there already
        wecom.fetch_group_stats(
            session, workspace_id=corp.workspace_id, days=[YESTERDAY - timedelta(days=3)], now=NOW
        )
    fake.calls.clear()
    result = tasks.fetch_group_stats(db, workspace_id=corp.workspace_id, now=NOW)
    assert result == "days 6, owners 1, rows 6, calls 6"
    assert {d for d, _o in _rows(db, corp.workspace_id)} == set(
        wecom.day_range(YESTERDAY - timedelta(days=6), YESTERDAY)
    )
    # the next morning: only the new yesterday, the week being complete
    fake.stat_today += timedelta(days=1)
    fake.group_stats[(YESTERDAY + timedelta(days=1), "zhangsan")] = _figures(7)
    result = tasks.fetch_group_stats(db, workspace_id=corp.workspace_id, now=NOW + timedelta(days=1))
    assert result == "days 1, owners 1, rows 1, calls 1"
    assert len(_rows(db, corp.workspace_id)) == 8


def test_the_daily_job_skips_a_workspace_without_wecom(
    db: Database, workspace_id: int, fake: FakeWecom
) -> None:
    assert tasks.fetch_group_stats(db, workspace_id=workspace_id, now=NOW) == "no WeCom settings"
    assert _stat_calls(fake) == []
    with db.reader() as session:
        count = session.scalar(
            select(func.count())
            .select_from(WecomGroupStat)
            .where(WecomGroupStat.workspace_id == workspace_id)
        )
    assert count == 0


def test_the_command_fetches_the_last_days(db: Database, corp: Corp, fake: FakeWecom) -> None:
    _owners(db, corp.workspace_id, "zhangsan")
    yesterday = wecom.wecom_yesterday()
    fake.group_stats[(yesterday, "zhangsan")] = _figures(2)
    with db.reader() as session:
        slug = workspaces.get_workspace(session, workspace_id=corp.workspace_id).slug
    result = CliRunner().invoke(app, ["wecom", "group-stats", "--days", "3", "--workspace", slug])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["end"], out["owners"], out["rows"], out["calls"]) == (yesterday.isoformat(), 1, 3, 3)
    assert _rows(db, corp.workspace_id)[(yesterday, "zhangsan")]["msg_total"] == 1000


@pytest.mark.postgres
def test_two_fetches_of_one_day_at_once_both_succeed(db: Database, workspace_id: int) -> None:
    """The job and the command storing the same day concurrently: the second waits for the first's
    rows and overwrites them instead of failing on the (workspace, day, owner) key."""
    import threading

    items = [{"owner": o, "data": _figures(n)} for n, o in ((1, "zhangsan"), (2, "lisi"))]
    later = [{"owner": "lisi", "data": _figures(5)}]
    errors: list[BaseException] = []
    with db.transaction() as first:
        group_stats.store_group_stats(first, workspace_id=workspace_id, day=YESTERDAY, items=items)

        def second() -> None:
            try:
                with db.transaction() as session:
                    group_stats.store_group_stats(
                        session, workspace_id=workspace_id, day=YESTERDAY, items=later
                    )
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting on the first's uncommitted rows
    thread.join(timeout=10)
    assert not errors, errors
    rows = _rows(db, workspace_id)
    assert rows[(YESTERDAY, "zhangsan")]["msg_total"] == 500
    assert rows[(YESTERDAY, "lisi")]["msg_total"] == 2500  # the later fetch's figures
