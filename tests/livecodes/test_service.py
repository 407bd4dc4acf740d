"""Live codes on the real database (SQLite and PostgreSQL): creation and its errors, scans handed out
fairly under the row lock, attribution of adds (new vs returning, idempotent), deletions, and stats."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from scipy.stats import chisquare
from sqlalchemy import func, select

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.core.errors import NotFound, ValidationFailed
from siyu.customers.models import Customer, Identity
from siyu.events.models import CustomerEvent
from siyu.livecodes import attribution, scans, service, stats
from siyu.livecodes.models import LiveCodeAdd, LiveCodeScan
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from siyu.tags import service as tags
from siyu.tags.models import CustomerTag
from tests.factories import make_channel, make_customer, make_member, make_store, make_tag, member
from tests.livecodes.helpers import make_code, staff_members

# the 10,000-scan fairness runs are in test_assignment.py (pure); here the same choice end to end
SCANS = 2000
# a Monday noon in Shanghai
NOON = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def _scan(
    db: Database,
    token: str,
    *,
    ip: str = "203.0.113.9",
    ua: str = "UA",
    at: datetime = NOON,
    rng: random.Random | None = None,
) -> scans.ScanResult:
    with db.transaction() as session:
        return scans.scan(session, token=token, client_ip=ip, user_agent=ua, now=at, rng=rng)


def test_create_gives_an_unguessable_token_and_a_state_derived_from_it(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 2)
    code = make_code(db, owner, staff)
    other = make_code(db, owner, staff)
    assert service.TOKEN_PATTERN.match(code.token) and code.token != other.token
    assert code.state == "lc" + code.token[:16] and len(code.state) <= 30
    assert service.landing_path(code) == f"/l/{code.token}"
    with db.transaction() as session:
        rows = service.staff_of(session, live_code_id=code.id)
        channel = code.channel_id
        # the default live-code channel is created once and reused
        assert other.channel_id == channel
    assert [r.user_id for r in rows] == [s.user_id for s in staff]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"name": " "}, "name"),
        ({"placement": "billboard"}, "placement"),
        ({"staff": []}, "staff"),
        ({"staff": [StaffIn(user_id=0)]}, "staff[0].user_id"),
        ({"weight": 0}, "staff[0].weight"),
        ({"daily_cap": 0}, "staff[0].daily_cap"),
        ({"weekdays": "8"}, "staff[0].weekdays"),
        ({"hours": "9-18"}, "staff[0].hours"),
        ({"hours": "25:00-26:00"}, "staff[0].hours"),
        ({"contact_qr_url": "javascript:alert(1)"}, "staff[0].contact_qr_url"),
        ({"auto_tag_ids": [0]}, "auto_tag_ids[0]"),
        ({"welcome_text": "欢" * 4001}, "welcome_text"),
        ({"cost_cents": -1}, "cost_cents"),
    ],
)
def test_bad_input_is_refused_with_where(db: Database, workspace_id: int, change: dict, where: str) -> None:
    change = dict(change)
    owner = member(db, workspace_id)
    [one] = staff_members(db, workspace_id, 1)
    staff_fields = {
        k: change.pop(k)
        for k in ("weight", "daily_cap", "weekdays", "hours", "contact_qr_url")
        if k in change
    }
    fields = {
        "name": "海报",
        "placement": "poster",
        "staff": [StaffIn(user_id=one.user_id, **staff_fields)],
        **change,
    }
    with pytest.raises(ValidationFailed) as caught, db.transaction() as session:
        service.create_live_code(session, actor=owner.actor, spec=LiveCodeIn(**fields))
    assert caught.value.where == where
    with db.reader() as session:
        assert service.list_live_codes(session, workspace_id=workspace_id) == []


def test_only_backups_and_foreign_channels_are_refused(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    [one] = staff_members(db, workspace_id, 1)
    with pytest.raises(ValidationFailed, match="not a backup"):
        make_code(db, owner, [StaffIn(user_id=one.user_id, is_backup=True)])
    with db.transaction() as session:
        douyin = make_channel(session, workspace_id=workspace_id, source_type="douyin")
    with pytest.raises(ValidationFailed) as caught:
        make_code(db, owner, [one], channel_id=douyin.id)
    assert caught.value.where == "channel_id"


def test_round_robin_over_the_database_is_exact(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 3)
    code = make_code(db, owner, staff, strategy="round_robin")
    counts: Counter[int | None] = Counter()
    with db.transaction() as session:
        for i in range(1200):
            result = scans.scan(
                session, token=code.token, client_ip=f"10.0.{i // 250}.{i % 250}", user_agent="x", now=NOON
            )
            counts[result.staff_user_id] += 1
    assert counts == {s.user_id: 400 for s in staff}


def test_weighted_random_over_the_database_matches_the_weights(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 3)
    weights = [5, 3, 2]
    code = make_code(
        db,
        owner,
        [StaffIn(user_id=s.user_id, weight=w) for s, w in zip(staff, weights, strict=True)],
        strategy="random",
    )
    rng = random.Random(12345)
    with db.transaction() as session:
        for _ in range(SCANS):
            scans.scan(session, token=code.token, client_ip="198.51.100.1", user_agent="x", now=NOON, rng=rng)
    with db.reader() as session:
        counts = dict(
            session.execute(
                select(LiveCodeScan.staff_user_id, func.count())
                .where(LiveCodeScan.live_code_id == code.id)
                .group_by(LiveCodeScan.staff_user_id)
            ).all()
        )
    observed = [counts[s.user_id] for s in staff]
    assert sum(observed) == SCANS
    assert chisquare(observed, [SCANS * w / 10 for w in weights]).pvalue > 0.01


def test_smooth_weighted_keeps_its_credits_between_scans(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 2)
    code = make_code(
        db,
        owner,
        [StaffIn(user_id=staff[0].user_id, weight=3), StaffIn(user_id=staff[1].user_id, weight=1)],
        strategy="weighted",
    )
    seen = [_scan(db, code.token).staff_user_id for _ in range(8)]  # a transaction each
    assert Counter(seen) == {staff[0].user_id: 6, staff[1].user_id: 2}


def test_daily_cap_then_backup_then_nobody(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    main, backup = staff_members(db, workspace_id, 2)
    code = make_code(
        db,
        owner,
        [
            StaffIn(user_id=main.user_id, daily_cap=2),
            StaffIn(user_id=backup.user_id, is_backup=True, daily_cap=1),
        ],
    )
    seen = [_scan(db, code.token).staff_user_id for _ in range(4)]
    assert seen == [main.user_id, main.user_id, backup.user_id, None]
    # the next day in Shanghai the caps start again
    assert _scan(db, code.token, at=NOON + timedelta(days=1)).staff_user_id == main.user_id
    with db.transaction() as session:
        service.set_staff_online(
            session, actor=owner.actor, live_code_id=code.id, user_id=main.user_id, online=False
        )
    assert _scan(db, code.token, at=NOON + timedelta(days=1)).staff_user_id == backup.user_id


def test_schedule_uses_the_workspace_time_zone(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    day, night = staff_members(db, workspace_id, 2)
    code = make_code(
        db,
        owner,
        [
            StaffIn(user_id=day.user_id, hours="09:00-18:00", weekdays="12345"),
            StaffIn(user_id=night.user_id, hours="18:00-09:00"),
        ],
    )
    assert _scan(db, code.token, at=NOON).staff_user_id == day.user_id  # 12:00 in Shanghai
    assert _scan(db, code.token, at=NOON + timedelta(hours=8)).staff_user_id == night.user_id  # 20:00
    # Saturday 08:00: the day member has no Saturdays; Friday's night shift runs until 09:00
    assert _scan(db, code.token, at=NOON + timedelta(days=5, hours=-4)).staff_user_id == night.user_id


def test_scan_keeps_no_raw_client_data(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    _scan(db, code.token, ip="192.0.2.77", ua="Mozilla/5.0 secret-agent")
    _scan(db, code.token, ip="192.0.2.77", ua="Mozilla/5.0 secret-agent")
    _scan(db, code.token, ip="192.0.2.78", ua="Mozilla/5.0 secret-agent")
    with db.reader() as session:
        rows = list(session.scalars(select(LiveCodeScan).where(LiveCodeScan.live_code_id == code.id)))
    assert len({r.visitor_hash for r in rows}) == 2
    for r in rows:
        assert "192.0.2" not in r.visitor_hash + r.ip_hash and "agent" not in r.visitor_hash


def test_unknown_malformed_and_disabled_tokens_fail_alike(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    with db.transaction() as session:
        service.set_active(session, actor=owner.actor, live_code_id=code.id, active=False)
    messages = set()
    for token in (code.token, "A" * 22, "x", "../../etc/passwd", "活码" * 11):
        with pytest.raises(NotFound) as caught:
            _scan(db, token)
        messages.add(str(caught.value))
    assert len(messages) == 1


def test_concurrent_scans_take_their_own_turns(db: Database, workspace_id: int) -> None:
    # PostgreSQL: the row lock on the code orders the scans; SQLite: its single writer does
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 4)
    code = make_code(db, owner, staff)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(25):
                _scan(db, code.token)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with db.reader() as session:
        counts = dict(
            session.execute(
                select(LiveCodeScan.staff_user_id, func.count())
                .where(LiveCodeScan.live_code_id == code.id)
                .group_by(LiveCodeScan.staff_user_id)
            ).all()
        )
    assert counts == {s.user_id: 50 for s in staff}  # 200 scans, exactly a quarter each


# --- attribution -------------------------------------------------------------------------------------


def _add(
    db: Database, workspace_id: int, state: str, external: str, staff_userid: str, **kw
) -> attribution.AddResult:
    with db.transaction() as session:
        return attribution.record_add(
            session,
            workspace_id=workspace_id,
            state=state,
            external_userid=external,
            staff_userid=staff_userid,
            **kw,
        )


def test_an_add_creates_the_customer_tags_queues_welcome_and_records_events(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        seller = make_member(session, workspace_id=workspace_id, role=Role.STAFF)
        from siyu.auth.models import Membership

        session.execute(
            Membership.__table__.update()
            .where(Membership.user_id == seller.user_id)
            .values(wecom_userid="zhangsan")
        )
        tag = make_tag(session, actor=owner.actor, name="桌贴客")
        store = make_store(session, workspace_id=workspace_id)
    code = make_code(
        db, owner, [seller], auto_tag_ids=[tag.id], welcome_text="欢迎！回复 1 领券", store_id=store.id
    )
    result = _add(db, workspace_id, code.state, "wmEXT001", "zhangsan", occurred_at=NOON)
    assert result.created and result.add.is_new_customer and result.add.staff_user_id == seller.user_id
    assert result.add.welcome_status == "pending" and result.add.welcome_text == "欢迎！回复 1 领券"
    with db.reader() as session:
        customer = session.get(Customer, result.add.customer_id)
        assert customer is not None and customer.first_channel_id == code.channel_id
        assert customer.owner_user_id == seller.user_id
        assert session.scalar(select(Identity.value).where(Identity.customer_id == customer.id)) == "wmEXT001"
        carried = session.scalar(select(CustomerTag).where(CustomerTag.customer_id == customer.id))
        assert carried is not None and carried.tag_id == tag.id and carried.source == "live_code"
        assert carried.source_ref == f"live_code:{code.id}"
        event = session.scalar(select(CustomerEvent).where(CustomerEvent.customer_id == customer.id))
        assert (
            event is not None
            and event.type == "livecode.added"
            and event.properties["live_code_id"] == code.id
        )
        types = set(session.scalars(select(DomainEvent.type).where(DomainEvent.customer_id == customer.id)))
        assert {"customer.created", "livecode.added", "tag.added", "event.recorded"} <= types


def test_a_retried_callback_changes_nothing(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    first = _add(db, workspace_id, code.state, "wmRETRY", "lisi")
    again = _add(db, workspace_id, code.state, "wmRETRY", "lisi")
    assert not again.created and again.add.id == first.add.id
    with db.reader() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(LiveCodeAdd).where(LiveCodeAdd.live_code_id == code.id)
            )
            == 1
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(CustomerEvent)
                .where(CustomerEvent.customer_id == first.add.customer_id)
            )
            == 1
        )


def test_first_add_wins_for_acquisition(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 1)
    poster = make_code(db, owner, staff, name="海报", placement="poster")
    table = make_code(db, owner, staff, name="桌贴")
    with db.transaction() as session:
        known = make_customer(
            session, workspace_id=workspace_id, identities={"wecom_external_userid": "wmKNOWN"}
        )
    first = _add(db, workspace_id, poster.state, "wmNEW", "s1")
    second = _add(db, workspace_id, table.state, "wmNEW", "s2")  # the same person adds a second member
    old = _add(db, workspace_id, table.state, "wmKNOWN", "s1")
    assert first.add.is_new_customer and not second.add.is_new_customer
    assert second.add.customer_id == first.add.customer_id
    assert not old.add.is_new_customer and old.add.customer_id == known.id
    with db.reader() as session:
        customer = session.get(Customer, first.add.customer_id)
        assert customer is not None and customer.first_channel_id == poster.channel_id


def test_unknown_state_and_bad_ids_are_refused(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    with pytest.raises(NotFound):
        _add(db, workspace_id, "lcnosuchstate00000", "wm1", "s1")
    with pytest.raises(NotFound):
        _add(db, workspace_id + 10_000, code.state, "wm1", "s1")  # another workspace's state
    for bad in ("", " ", "x" * 65, "wm 1", "wm\n1", "<script>"):
        with pytest.raises(ValidationFailed):
            _add(db, workspace_id, code.state, bad, "s1")


def test_deletion_marks_the_latest_add_once(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    code = make_code(db, owner, staff_members(db, workspace_id, 1))
    _add(db, workspace_id, code.state, "wmDEL", "s1", occurred_at=NOON)
    with db.transaction() as session:
        deleted = attribution.record_delete(
            session,
            workspace_id=workspace_id,
            external_userid="wmDEL",
            staff_userid="s1",
            occurred_at=NOON + timedelta(days=1),
        )
        assert deleted is not None
    with db.transaction() as session:
        assert (
            attribution.record_delete(
                session, workspace_id=workspace_id, external_userid="wmDEL", staff_userid="s1"
            )
            is None
        )
        assert (
            attribution.record_delete(
                session, workspace_id=workspace_id, external_userid="wmNONE", staff_userid="s1"
            )
            is None
        )


def test_stats_by_day_and_staff(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    a, b = staff_members(db, workspace_id, 2)
    code = make_code(db, owner, [a, b], cost_cents=10_000)
    # day 1: four scans by three visitors, handed a, b, a, b; two new adds and one returning
    for ip in ("1.1.1.1", "1.1.1.1", "2.2.2.2", "3.3.3.3"):
        _scan(db, code.token, ip=ip, at=NOON)
    with db.transaction() as session:
        make_customer(session, workspace_id=workspace_id, identities={"wecom_external_userid": "wmOLD"})
    _add(db, workspace_id, code.state, "wmA", "sa", staff_user_id=a.user_id, occurred_at=NOON)
    _add(db, workspace_id, code.state, "wmB", "sb", staff_user_id=b.user_id, occurred_at=NOON)
    _add(db, workspace_id, code.state, "wmOLD", "sa", staff_user_id=a.user_id, occurred_at=NOON)
    # day 2: one scan by a visitor of day 1, one deletion
    _scan(db, code.token, ip="1.1.1.1", at=NOON + timedelta(days=1))
    with db.transaction() as session:
        attribution.record_delete(
            session,
            workspace_id=workspace_id,
            external_userid="wmB",
            staff_userid="sb",
            occurred_at=NOON + timedelta(days=1),
        )
    with db.reader() as session:
        figures = stats.code_stats(
            session,
            workspace_id=workspace_id,
            live_code_id=code.id,
            start=date(2026, 5, 31),
            end=date(2026, 6, 2),
        )
    assert [
        (d.day.day, d.scans, d.scanners, d.new_adds, d.returning_adds, d.deletions) for d in figures.days
    ] == [
        (31, 0, 0, 0, 0, 0),
        (1, 4, 3, 2, 1, 0),
        (2, 1, 1, 0, 0, 1),
    ]
    totals = figures.totals
    assert (totals.scans, totals.scanners, totals.new_adds, totals.returning_adds, totals.deletions) == (
        5,
        3,
        2,
        1,
        1,
    )
    assert totals.pass_through_rate == pytest.approx(2 / 3)
    assert figures.cost_per_new_customer_cents == 5_000
    per = {s.user_id: s for s in figures.staff}
    assert (per[a.user_id].scans, per[a.user_id].new_adds, per[a.user_id].returning_adds) == (3, 1, 1)
    assert (per[b.user_id].scans, per[b.user_id].new_adds, per[b.user_id].deletions) == (2, 1, 1)
    with db.reader() as session:
        listed = stats.totals_by_code(session, workspace_id=workspace_id)[code.id]
    assert (listed.scans, listed.scanners, listed.new_adds, listed.deletions) == (5, 3, 2, 1)
    with pytest.raises(ValidationFailed), db.reader() as session:
        stats.code_stats(
            session,
            workspace_id=workspace_id,
            live_code_id=code.id,
            start=date(2026, 6, 2),
            end=date(2026, 6, 1),
        )


def test_auto_tag_deleted_later_does_not_block_the_add(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        tag = make_tag(session, actor=owner.actor)
    code = make_code(db, owner, staff_members(db, workspace_id, 1), auto_tag_ids=[tag.id])
    with db.transaction() as session:
        assert tags.get_tag(session, workspace_id=workspace_id, tag_id=tag.id)
    assert _add(db, workspace_id, code.state, "wmTAG", "s1").created
