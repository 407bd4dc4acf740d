"""Live codes' contact ways kept in sync with WeCom by the worker task, against the fake WeCom (SQLite
and PostgreSQL): one single-staff QR way per member carrying the code's state, updated and deleted as
the code changes, refusals kept and retried, an interrupted add adopted rather than repeated, and the
callback of such a way attributing the customer to the code and the member."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.livecodes import scans, service, sync
from siyu.livecodes.models import LiveCode, LiveCodeAdd, LiveCodeStaff
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.reach.tasks import periodic_tasks
from siyu.web.app import create_app
from siyu.wecom import service as wecom
from siyu.wecom import tasks
from siyu.wecom.service.live_code_ways import ADD_PATH, DEL_PATH, GET_PATH, LIST_PATH, UPDATE_PATH
from tests.factories import Member, api_client
from tests.livecodes.helpers import make_code, staff_members
from tests.web.conftest import csrf_of, log_in, make_login
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom
from tests.wecom.test_callbacks import contact_event, deliver

USERIDS = ("zhangsan", "lisi")  # members of the fake corp


def _code_with_two_staff(db: Database, corp: Corp, **fields: object) -> tuple[list[Member], LiveCode]:
    staff = staff_members(db, corp.workspace_id, 2)
    with db.transaction() as session:
        for person, userid in zip(staff, USERIDS, strict=True):
            wecom.map_staff(session, actor=corp.owner.actor, wecom_userid=userid, user_id=person.user_id)
    return staff, make_code(db, corp.owner, staff, wecom_remark="门店桌贴", **fields)


def _rows(db: Database, code: LiveCode) -> dict[int, LiveCodeStaff]:
    """Every staff row of the code by user id, removed members' included."""
    with db.reader() as session:
        rows = session.scalars(select(LiveCodeStaff).where(LiveCodeStaff.live_code_id == code.id))
        return {r.user_id: r for r in rows}


def _bodies(fake: FakeWecom, path: str) -> list[dict[str, object]]:
    return [body for p, body in fake.calls if p == path]


def _sync(db: Database, corp: Corp, **kw: object) -> tasks.LiveCodeSync:
    return tasks.sync_live_codes(db, workspace_id=corp.workspace_id, **kw)  # type: ignore[arg-type]


def _spec(code: LiveCode, staff: list[Member], **fields: object) -> LiveCodeIn:
    return LiveCodeIn(
        name=code.name,
        placement=code.placement,
        staff=[StaffIn(user_id=s.user_id) for s in staff],
        **fields,  # type: ignore[arg-type]
    )


def test_each_member_gets_a_way_with_the_codes_state_once_and_its_callback_attributes(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    staff, code = _code_with_two_staff(db, corp)
    assert {sync.status_of(r) for r in _rows(db, code).values()} == {sync.SyncStatus.PENDING}
    assert _bodies(fake, ADD_PATH) == []  # creating the code called nobody: the worker does

    first = _sync(db, corp)
    assert (first.added, first.updated, first.deleted, first.failures) == (2, 0, 0, [])
    adds = _bodies(fake, ADD_PATH)
    assert sorted(b["user"][0] for b in adds) == sorted(USERIDS)  # type: ignore[index]
    for body in adds:
        assert body["type"] == 1 and body["scene"] == 2 and body["state"] == code.state
        assert body["remark"] == "门店桌贴" and body["skip_verify"] is True and len(body["user"]) == 1  # type: ignore[arg-type]
    rows = _rows(db, code)
    for person, userid in zip(staff, USERIDS, strict=True):
        row = rows[person.user_id]
        way = fake.contact_ways[row.wecom_config_id or ""]
        assert way["user"] == [userid] and way["state"] == code.state
        assert row.wecom_qr_url == way["qr_code"] and sync.status_of(row) == sync.SyncStatus.SYNCED

    again = _sync(db, corp)  # running the task twice adds nothing
    assert (again.added, again.updated, again.deleted) == (0, 0, 0)
    assert len(_bodies(fake, ADD_PATH)) == 2 and len(fake.contact_ways) == 2
    assert tasks.sync_live_codes in periodic_tasks()  # siyu worker / siyu serve run it on every poll

    # the landing page shows the chosen member's synced QR
    with db.transaction() as session:
        scan = scans.scan(session, token=code.token, client_ip="203.0.113.7", user_agent="UA")
    assert scan.staff_user_id is not None
    assert scan.contact_qr_url == rows[scan.staff_user_id].wecom_qr_url

    # the add through lisi's way: the callback's (UserID, State) name the code and lisi
    external = "wmEXT" + uuid.uuid4().hex[:12]
    fake.add_friend("lisi", external, name="顾客")
    client = api_client(db)
    message = contact_event("add_external_contact", userid="lisi", external=external, State=code.state)
    assert deliver(client, corp, message) == (200, "success")
    with db.reader() as session:
        [credited] = session.scalars(select(LiveCodeAdd).where(LiveCodeAdd.external_userid == external)).all()
    assert credited.live_code_id == code.id and credited.staff_user_id == staff[1].user_id
    assert credited.is_new_customer
    # the same customer adds zhangsan through the code too: recorded, but a returning add, not a new one
    fake.add_friend("zhangsan", external)
    again_add = contact_event("add_external_contact", userid="zhangsan", external=external, State=code.state)
    assert deliver(client, corp, again_add) == (200, "success")
    with db.reader() as session:
        adds = session.scalars(
            select(LiveCodeAdd).where(LiveCodeAdd.external_userid == external).order_by(LiveCodeAdd.id)
        ).all()
    assert [(a.staff_user_id, a.is_new_customer) for a in adds] == [
        (staff[1].user_id, True),
        (staff[0].user_id, False),
    ]
    shown = client.get(f"/api/live-codes/{code.id}", headers=corp.owner.headers).json()
    assert {s["wecom_status"] for s in shown["staff"]} == {"synced"}
    assert {s["wecom_qr_url"] for s in shown["staff"]} == {r.wecom_qr_url for r in rows.values()}


def test_edits_update_and_delete_the_ways_and_deactivation_removes_them(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    staff, code = _code_with_two_staff(db, corp)
    _sync(db, corp)
    before = _rows(db, code)
    kept_way, gone_way = before[staff[0].user_id].wecom_config_id, before[staff[1].user_id].wecom_config_id

    with db.transaction() as session:  # lisi off the code, a new remark: nothing is called here
        service.update_live_code(
            session,
            actor=corp.owner.actor,
            live_code_id=code.id,
            spec=_spec(code, staff[:1], wecom_remark="海报", wecom_skip_verify=False),
        )
    assert _bodies(fake, DEL_PATH) == [] and _bodies(fake, UPDATE_PATH) == []
    rows = _rows(db, code)
    assert rows[staff[1].user_id].removed_at is not None
    with db.reader() as session:
        assert [r.user_id for r in service.staff_of(session, live_code_id=code.id)] == [staff[0].user_id]

    done = _sync(db, corp)
    assert (done.added, done.updated, done.deleted, done.failures) == (0, 1, 1, [])
    assert _bodies(fake, DEL_PATH) == [{"config_id": gone_way}]
    [update] = _bodies(fake, UPDATE_PATH)
    assert update == {
        "config_id": kept_way,
        "remark": "海报",
        "skip_verify": False,
        "state": code.state,
        "user": ["zhangsan"],
    }
    assert list(fake.contact_ways) == [kept_way]
    rows = _rows(db, code)
    assert staff[1].user_id not in rows  # the removed member's row goes once WeCom has forgotten the way
    assert rows[staff[0].user_id].wecom_qr_url == fake.contact_ways[kept_way or ""]["qr_code"]  # kept

    with db.transaction() as session:
        service.set_active(session, actor=corp.owner.actor, live_code_id=code.id, active=False)
    assert _sync(db, corp).deleted == 1 and fake.contact_ways == {}
    [row] = _rows(db, code).values()
    assert row.wecom_config_id is None and row.wecom_qr_url is None
    assert sync.status_of(row) == sync.SyncStatus.OFF
    with db.transaction() as session:
        service.set_active(session, actor=corp.owner.actor, live_code_id=code.id, active=True)
    assert _sync(db, corp).added == 1 and len(fake.contact_ways) == 1


def test_a_refusal_is_kept_on_the_row_shown_and_retried_after_a_backoff(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    fake.staff.discard("lisi")  # not (yet) a member of the corp: add_contact_way answers 40003
    staff, code = _code_with_two_staff(db, corp)
    first = _sync(db, corp)
    assert first.added == 1 and len(first.failures) == 1
    failed = _rows(db, code)[staff[1].user_id]
    assert sync.status_of(failed) == sync.SyncStatus.FAILED and failed.wecom_config_id is None
    assert failed.wecom_error is not None and "40003" in failed.wecom_error
    assert failed.wecom_adding_since is None  # WeCom answered: no way can have been made
    assert failed.wecom_attempts == 1 and failed.wecom_retry_at is not None

    who = make_login(db, corp.workspace_id, Role.OWNER)
    client = TestClient(create_app(database=db))
    client.cookies.set("lang", "en")
    log_in(client, who)
    page = client.get(f"/live-codes/{code.id}")
    assert page.status_code == 200
    assert (
        'data-status="failed"' in page.text and "40003" in page.text and 'data-status="synced"' in page.text
    )

    calls = len(_bodies(fake, ADD_PATH))
    assert _sync(db, corp).added == 0 and len(_bodies(fake, ADD_PATH)) == calls  # still backing off
    fake.staff.add("lisi")
    later = _sync(db, corp, now=utcnow() + timedelta(minutes=1))
    assert later.added == 1 and later.failures == []
    row = _rows(db, code)[staff[1].user_id]
    assert sync.status_of(row) == sync.SyncStatus.SYNCED and row.wecom_error is None
    assert fake.contact_ways[row.wecom_config_id or ""]["user"] == ["lisi"]


def test_sync_now_from_the_page_pushes_again_on_the_next_poll(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    _staff, code = _code_with_two_staff(db, corp)
    _sync(db, corp)
    who = make_login(db, corp.workspace_id, Role.OWNER)
    client = TestClient(create_app(database=db))
    token = log_in(client, who)
    refused = client.post(f"/live-codes/{code.id}/wecom-sync", data={}, follow_redirects=False)
    assert refused.status_code in (400, 403)  # no CSRF token
    page = client.get(f"/live-codes/{code.id}")
    assert csrf_of(page.text) == token and 'id="wecom-sync-now"' in page.text
    done = client.post(
        f"/live-codes/{code.id}/wecom-sync", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert _bodies(fake, UPDATE_PATH) == []  # the request itself calls no WeCom
    assert {sync.status_of(r) for r in _rows(db, code).values()} == {sync.SyncStatus.PENDING}
    assert _sync(db, corp).updated == 2 and len(_bodies(fake, UPDATE_PATH)) == 2
    assert len(_bodies(fake, ADD_PATH)) == 2  # updated by config_id, never added again


def test_a_way_deleted_in_wecoms_console_is_made_again(db: Database, corp: Corp, fake: FakeWecom) -> None:
    staff, code = _code_with_two_staff(db, corp)
    _sync(db, corp)
    old = _rows(db, code)[staff[0].user_id].wecom_config_id
    del fake.contact_ways[old or ""]  # an operator deleted it in WeCom
    with db.transaction() as session:
        sync.request_sync(session, actor=corp.owner.actor, live_code_id=code.id)
    first = _sync(db, corp)
    assert first.updated == 1 and len(first.failures) == 1  # update_contact_way answered 41044
    row = _rows(db, code)[staff[0].user_id]
    assert row.wecom_config_id is None and sync.status_of(row) == sync.SyncStatus.FAILED
    assert _sync(db, corp).added == 1
    row = _rows(db, code)[staff[0].user_id]
    assert row.wecom_config_id in fake.contact_ways and row.wecom_config_id != old
    assert len(fake.contact_ways) == 2


def test_an_add_interrupted_before_it_was_recorded_is_adopted_not_repeated(
    db: Database, corp: Corp, fake: FakeWecom
) -> None:
    staff, code = _code_with_two_staff(db, corp)
    now = utcnow()
    with db.reader() as session:
        items = sync.due_for_sync(session, workspace_ids=[corp.workspace_id], now=now)
        client = wecom.client_for(session, workspace_id=corp.workspace_id)
    item = next(i for i in items if i.user_id == staff[0].user_id)
    with db.transaction() as session:
        assert sync.claim(session, item=item, now=now, adding=True)
    with client:  # WeCom makes the way; the worker dies before recording it
        lost = wecom.push_way(
            client,
            wanted=True,
            state=item.state,
            userid="zhangsan",
            remark=item.remark,
            skip_verify=item.skip_verify,
            config_id=None,
            adding_since=None,
            now=now,
        )
    assert lost.config_id in fake.contact_ways
    assert _rows(db, code)[staff[0].user_id].wecom_adding_since is not None  # the marker was committed

    assert _sync(db, corp, now=now).added == 1  # the held row waits for its lease; the other is added
    after = _sync(db, corp, now=now + sync.LEASE + timedelta(seconds=1))
    assert (after.adopted, after.added, after.failures) == (1, 0, [])
    assert len(_bodies(fake, ADD_PATH)) == 2 and len(fake.contact_ways) == 2  # never two for zhangsan
    assert _bodies(fake, LIST_PATH) and _bodies(fake, GET_PATH)
    row = _rows(db, code)[staff[0].user_id]
    assert row.wecom_config_id == lost.config_id and row.wecom_qr_url == lost.qr_code
    assert row.wecom_adding_since is None and sync.status_of(row) == sync.SyncStatus.SYNCED


def test_a_workspace_without_wecom_is_skipped_quietly_and_keeps_its_hand_entered_qr(
    db: Database, workspace_id: int
) -> None:
    from tests.factories import member

    owner = member(db, workspace_id)
    [person] = staff_members(db, workspace_id, 1)
    hand = "https://wework.qpic.cn/hand-entered/0"
    code = make_code(db, owner, [StaffIn(user_id=person.user_id, contact_qr_url=hand)])
    result = tasks.sync_live_codes(db, workspace_id=workspace_id)
    assert (result.added, result.failures) == (0, [])
    [row] = _rows(db, code).values()
    assert sync.status_of(row) == sync.SyncStatus.PENDING and row.wecom_error is None
    with db.transaction() as session:
        scan = scans.scan(session, token=code.token, client_ip="203.0.113.8", user_agent="UA")
    assert scan.contact_qr_url == hand
