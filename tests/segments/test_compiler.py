"""Each kind of condition compiled to SQL and run on SQLite and PostgreSQL against a small known pool,
with `now` fixed; and the errors only the database can show (unknown tag, deleted segment, circles)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.core.db import Database
from siyu.customers import identity, rollups
from siyu.customers import service as customers
from siyu.segments import service as segments
from siyu.segments.compiler import compile_rule
from siyu.segments.rules import RuleError
from siyu.segments.service import read_rule
from siyu.tags import service as tags
from tests.factories import make_channel, make_customer, make_event, make_member, make_order, make_store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Pool:
    owner: Actor
    staff: Actor
    ann: int
    bob: int
    cat: int


def _pool(db: Database, workspace_id: int) -> Pool:
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        staff = make_member(session, workspace_id=workspace_id, role=Role.STAFF).actor
        douyin = make_channel(session, workspace_id=workspace_id, key="douyin", name="抖音")
        store = make_store(session, workspace_id=workspace_id, code="SH01")
        ann = make_customer(
            session,
            workspace_id=workspace_id,
            name="安",
            city="上海",
            identities={"wecom_external_userid": "wm-ann"},
            owner_user_id=staff.user_id,
            attributes={"level": "gold", "points": 120, "vip": True},
            created_at=NOW - 300 * DAY,
        )
        ann.gender, ann.birthday = "female", date(1990, 5, 1)
        bob = make_customer(
            session,
            workspace_id=workspace_id,
            name="博",
            city="北京",
            attributes={"level": "silver", "points": "120"},
            created_at=NOW - 200 * DAY,
        )
        bob.gender = "male"
        cat = make_customer(
            session, workspace_id=workspace_id, name=None, phone="", identities={"email": "cat@example.com"}
        )
        dan = make_customer(
            session, workspace_id=workspace_id, name=None, phone=""
        )  # merged away: never listed
        tea = [{"category": "奶茶", "unit_price_cents": 3000}]
        for days in (3, 10):
            make_order(
                session,
                workspace_id=workspace_id,
                customer_id=ann.id,
                paid_cents=3000,
                placed_at=NOW - days * DAY,
                channel_id=douyin.id,
                store_id=store.id,
                lines=tea,
            )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=bob.id,
            paid_cents=60000,
            placed_at=NOW - 100 * DAY,
            lines=[{"category": "咖啡", "unit_price_cents": 60000}],
        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=bob.id,
            paid_cents=2000,
            refunded_cents=2000,
            status="refunded",
            placed_at=NOW - 5 * DAY,
            lines=tea,
        )
        make_order(session, workspace_id=workspace_id, customer_id=None, placed_at=NOW - DAY)  # nobody's
        make_event(
            session,
            workspace_id=workspace_id,
            customer_id=ann.id,
            type="message.opened",
            occurred_at=NOW - 10 * DAY,
        )
        make_event(
            session,
            workspace_id=workspace_id,
            customer_id=bob.id,
            type="message.opened",
            occurred_at=NOW - 90 * DAY,
        )
        level = tags.create_group(session, actor=owner, name="等级")
        taste = tags.create_group(session, actor=owner, name="口味")
        vip = tags.create_tag(session, actor=owner, group_id=level.id, name="VIP")
        other_vip = tags.create_tag(session, actor=owner, group_id=taste.id, name="VIP")
        tags.tag_customer(session, actor=owner, customer_id=ann.id, tag_id=vip.id)
        tags.tag_customer(session, actor=owner, customer_id=bob.id, tag_id=other_vip.id)
        for who, status, when in ((ann, "granted", 20), (bob, "granted", 20), (bob, "withdrawn", 10)):
            customers.record_consent(
                session,
                actor=owner,
                customer_id=who.id,
                contact_channel="sms",
                purpose="marketing",
                status=status,
                occurred_at=NOW - when * DAY,
            )
        identity.merge_customers(
            session,
            workspace_id=workspace_id,
            survivor_id=cat.id,
            merged_id=dan.id,
            reason="t",
            actor_user_id=None,
        )
        rollups.refresh_rollups(session, workspace_id=workspace_id, customer_ids=[ann.id, bob.id, cat.id])
        segments.create_segment(session, actor=owner, name="上海客", rule='city = "上海"')
        return Pool(owner, staff, ann.id, bob.id, cat.id)


CASES = [
    ('city = "上海"', {"ann"}),
    ('city != "上海"', {"bob", "cat"}),
    ("city = null", {"cat"}),
    ('city in ["北京", null]', {"bob", "cat"}),
    ('name = "安" or name = null', {"ann", "cat"}),
    ('gender = "female"', {"ann"}),
    ('gender in ["male", "unknown"]', {"bob", "cat"}),
    ('birthday < "2000-01-01"', {"ann"}),
    ("birthday = null", {"bob", "cat"}),
    ('created_at < "2025-12-01"', {"ann", "bob"}),
    ('attr.level = "gold"', {"ann"}),
    ('attr.level != "gold"', {"bob", "cat"}),
    ('attr.level in ["gold", "silver"]', {"ann", "bob"}),
    ("attr.points > 100", {"ann"}),  # bob's points are the string "120"
    ('attr.points = "120"', {"bob"}),
    ("attr.vip = true", {"ann"}),
    ("attr.level = null", {"cat"}),
    ("has(phone)", {"ann", "bob"}),
    ("has(wecom_external_userid) and has(phone)", {"ann"}),
    ("not has(phone)", {"cat"}),
    ('tag("VIP")', {"ann", "bob"}),
    ('tag("等级/VIP")', {"ann"}),
    ('not tag("口味/VIP")', {"ann", "cat"}),
    ("order_count >= 2", {"ann"}),
    ("order_count = 0", {"cat"}),
    ("order_count in [1, 2]", {"ann", "bob"}),
    ("net_revenue >= 60", {"ann", "bob"}),
    ("net_revenue > 60", {"bob"}),
    ("avg_order_value >= 100", {"bob"}),
    ('last_order_at > ago("30d")', {"ann"}),
    ('first_order_at < "2026-03-01"', {"bob"}),
    ('last_event_at > ago("30d")', {"ann"}),
    ("last_order_at = null", {"cat"}),
    ('first_channel = "抖音"', {"ann"}),
    ('last_channel != "douyin"', {"bob", "cat"}),
    ("owner = null", {"bob", "cat"}),
    ('categories contains "奶茶"', {"ann"}),  # bob's 奶茶 order was refunded
    ('not categories contains "咖啡"', {"ann", "cat"}),
    ('consent(channel="sms")', {"ann"}),
    ('consent(channel="sms", purpose="transactional")', set()),
    ('orders(category="奶茶", within="30d").count >= 2', {"ann"}),
    ('orders(within="30d").count = 0', {"bob", "cat"}),
    ('orders(within="7d").count < 1', {"bob", "cat"}),
    ('orders(within="60d").sum >= 60', {"ann"}),
    ('orders(category="咖啡").sum >= 500', {"bob"}),
    ('orders(channel="douyin", store="SH01").count >= 1', {"ann"}),
    ('orders(store="sh01").count = 2', {"ann"}),
    ('events(type="message.opened", within="60d").count = 0', {"bob", "cat"}),
    ('events(within="120d").count >= 1', {"ann", "bob"}),
    ('segment("上海客")', {"ann"}),
    ('not segment("上海客") and has(phone)', {"bob"}),
    ("all", {"ann", "bob", "cat"}),
    ("none", set()),
]


def _names(pool: Pool, ids: list[int]) -> set[str]:
    by_id = {pool.ann: "ann", pool.bob: "bob", pool.cat: "cat"}
    return {by_id[i] for i in ids}


@pytest.fixture
def pool(db: Database, workspace_id: int) -> Pool:
    return _pool(db, workspace_id)


def test_every_condition_matches_the_expected_customers(db: Database, pool: Pool) -> None:
    wrong = []
    with db.reader() as session:
        for text, expected in CASES:
            found = _names(pool, segments.member_ids(session, actor=pool.owner, rule=text, now=NOW))
            counted = segments.count_segment_rule(session, actor=pool.owner, rule=text, now=NOW).count
            if found != expected or counted != len(expected):
                wrong.append((text, sorted(found), counted, sorted(expected)))
    assert wrong == [], "\n".join(map(str, wrong))


def test_owner_by_email_and_staff_see_only_their_own(db: Database, pool: Pool) -> None:
    with db.reader() as session:
        emails = auth.member_ids_by_email(session, workspace_id=pool.owner.workspace_id)
        email = next(e for e, i in emails.items() if i == pool.staff.user_id)
        assert _names(
            pool, segments.member_ids(session, actor=pool.owner, rule=f'owner = "{email}"', now=NOW)
        ) == {"ann"}
        assert segments.count_segment_rule(session, actor=pool.staff, rule="all", now=NOW).count == 1
        sample = segments.sample_members(session, actor=pool.staff, rule="all", now=NOW)
        assert [m.id for m in sample.members] == [pool.ann] and sample.members[0].phone is not None
        assert "****" in sample.members[0].phone


def test_one_customer_is_re_evaluated_by_adding_its_id(db: Database, pool: Pool) -> None:
    rule = read_rule('tag("VIP") and orders(within="30d").count >= 1')
    with db.reader() as session:
        statement = compile_rule(session, workspace_id=pool.owner.workspace_id, rule=rule, now=NOW)
        one = customers.RULE_COLUMNS.customer_id
        assert list(session.scalars(statement.where(one == pool.ann))) == [pool.ann]
        assert list(session.scalars(statement.where(one == pool.bob))) == []


def test_windows_move_with_now(db: Database, pool: Pool) -> None:
    rule = 'orders(category="奶茶", within="30d").count >= 2'
    with db.reader() as session:
        assert segments.count_segment_rule(session, actor=pool.owner, rule=rule, now=NOW).count == 1
        # 31 days after the older of ann's two tea orders (10 days before NOW), it has left the window
        later = NOW + 21 * DAY
        assert segments.count_segment_rule(session, actor=pool.owner, rule=rule, now=later).count == 0
        # and orders after `now` do not count yet
        assert segments.count_segment_rule(session, actor=pool.owner, rule=rule, now=NOW - 5 * DAY).count == 0


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ('tag("VIPP")', "no tag is called 'VIPP'", "did you mean 'VIP'?"),
        ('tag("等级/SVIP")', "no tag is called '等级/SVIP'", "'等级/VIP'"),
        ('first_channel = "douyn"', "no channel is called 'douyn'", "did you mean 'douyin'?"),
        ('orders(store="SH02").count > 0', "no store has the code 'SH02'", "'SH01'"),
        ('owner = "nobody@example.com"', "no member has the email", None),
        ('segment("上海")', "no segment is called '上海'", "did you mean '上海客'?"),
        ("has(member_card)", "no customer holds an identity of kind 'member_card'", None),
    ],
)
def test_names_the_database_does_not_know(
    db: Database, pool: Pool, text: str, message: str, hint: str | None
) -> None:
    with db.reader() as session, pytest.raises(RuleError) as caught:
        segments.count_segment_rule(session, actor=pool.owner, rule=text, now=NOW)
    assert message in caught.value.message and caught.value.details == {"line": 1, "column": 1}
    if hint:
        assert hint in (caught.value.hint or "")


def test_deleted_segments_and_circles_are_reported(db: Database, pool: Pool) -> None:
    with db.transaction() as session:
        first = segments.create_segment(
            session, actor=pool.owner, name="甲", rule='segment("上海客") or tag("VIP")'
        )
        second = segments.create_segment(
            session, actor=pool.owner, name="乙", rule='segment("甲") and has(phone)'
        )
    with db.transaction() as session, pytest.raises(RuleError, match="in a circle: 甲 → 乙 → 甲"):
        segments.update_segment(session, actor=pool.owner, segment_id=first.id, rule='segment("乙")')
    with db.transaction() as session, pytest.raises(RuleError, match="in a circle: 乙 → 乙"):
        segments.update_segment(session, actor=pool.owner, segment_id=second.id, rule='segment("乙")')
    with db.transaction() as session:
        segments.delete_segment(session, actor=pool.owner, segment_id=first.id)
    with db.reader() as session, pytest.raises(RuleError, match="segment '甲' was deleted") as caught:
        segments.count_segment_rule(session, actor=pool.owner, rule='has(phone) and segment("乙")', now=NOW)
    assert "restore" in (caught.value.hint or "")
