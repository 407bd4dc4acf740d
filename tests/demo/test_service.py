"""Building the demo workspace through the real import path, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select

from siyu.auth import service as auth
from siyu.auth.models import Membership, Role, User
from siyu.channels.models import Channel, ChannelCost, Store
from siyu.communities import stats as community_stats
from siyu.core.db import Database
from siyu.core.errors import Conflict, NotFound
from siyu.customers.models import Consent, Customer, IdentityReview, MergeLog
from siyu.demo import generator, service
from siyu.demo.service import DemoBuild
from siyu.events.models import CustomerEvent
from siyu.livecodes import attribution
from siyu.livecodes import stats as livecode_stats
from siyu.livecodes.models import LiveCodeAdd
from siyu.membership import service as membership
from siyu.metrics import service as metrics
from siyu.orders.models import Order
from siyu.overview import service as overview
from siyu.wecom.models import WecomFollow
from siyu.workspaces import service as workspaces

CUSTOMERS = 500


@pytest.fixture(scope="module")
def built(database: Database, tmp_path_factory: pytest.TempPathFactory) -> DemoBuild:
    """One small brand per engine, shared by the tests of this module (building takes a few seconds)."""
    slug = f"demo-{uuid.uuid4().hex[:8]}"
    return service.build_demo(
        database, directory=tmp_path_factory.mktemp("demo"), customers=CUSTOMERS, seed=5, slug=slug
    )


def _count(database: Database, statement: object) -> int:
    with database.reader() as session:
        return int(session.scalar(statement) or 0)  # type: ignore[call-overload]


def test_every_import_finished_and_rejected_exactly_the_dirty_rows(
    database: Database, built: DemoBuild
) -> None:
    assert built.files is not None
    assert [(i.kind, i.status) for i in built.imports] == [
        ("customers", "done"),
        ("orders", "done"),
        ("events", "done"),
    ]
    rejected = {i.kind: i.rejected_rows for i in built.imports}
    assert rejected == {"customers": 3, "orders": 12, "events": 3}
    reports = {p.name for p in built.files.directory.glob("*-rejects.csv")}
    assert reports == {"customers-rejects.csv", "orders-rejects.csv", "events-rejects.csv"}
    orders_report = pl.read_csv(built.files.directory / "orders-rejects.csv", infer_schema=False)
    assert set(orders_report["column"]) >= {"手机号", "下单时间", "实付金额", "渠道"}


def test_duplicates_merged_into_one_customer_per_person(database: Database, built: DemoBuild) -> None:
    assert built.files is not None
    ws = built.workspace_id
    live = _count(
        database,
        select(func.count())
        .select_from(Customer)
        .where(Customer.workspace_id == ws, Customer.merged_into_id.is_(None)),
    )
    assert built.engagement is not None and built.engagement.new_customers > 0
    # every person of the files once, and the customers the demo's live codes brought in
    assert built.outreach is not None
    brought = built.engagement.new_customers + built.outreach.new_customers
    assert live - brought == built.files.persons == CUSTOMERS
    merges = _count(database, select(func.count()).select_from(MergeLog).where(MergeLog.workspace_id == ws))
    assert merges == built.files.split_persons > 0
    reviews = _count(
        database, select(func.count()).select_from(IdentityReview).where(IdentityReview.workspace_id == ws)
    )
    assert reviews == 0  # no conflicting keys in the brand: nothing left for review


def test_a_merged_person_holds_their_store_and_mini_program_orders(
    database: Database, built: DemoBuild
) -> None:
    assert built.files is not None
    bind = next(
        e
        for e in pl.read_ndjson(built.files.events_jsonl, infer_schema_length=None).iter_rows(named=True)
        if e["事件类型"] == "member_bind"
    )
    orders = pl.read_csv(built.files.orders_csv, infer_schema=False)
    mine = orders.filter((pl.col("手机号") == bind["手机号"]) | (pl.col("unionid") == bind["unionid"]))
    assert mine["渠道"].n_unique() >= 2  # bought in a store (by phone) and in the mini program (by unionid)
    with database.reader() as session:
        owners = session.scalars(
            select(Order.customer_id).where(
                Order.workspace_id == built.workspace_id,
                Order.external_id.in_(mine["订单号"].unique().to_list()),
            )
        ).all()
        assert len(owners) == mine["订单号"].n_unique()
        assert len(set(owners)) == 1
        survivor = session.get(Customer, owners[0])
        assert survivor is not None and survivor.merged_into_id is None


def test_orders_refunds_and_revenue_match_the_files(database: Database, built: DemoBuild) -> None:
    assert built.files is not None
    ws = built.workspace_id
    with database.reader() as session:
        by_status = {
            status: count
            for status, count in session.execute(
                select(Order.status, func.count()).where(Order.workspace_id == ws).group_by(Order.status)
            ).tuples()
        }
        net = session.scalar(
            select(func.sum(Order.paid_cents - Order.refunded_cents)).where(Order.workspace_id == ws)
        )
    assert sum(by_status.values()) == built.files.orders
    assert by_status["refunded"] == built.files.refunded_orders
    assert by_status["partially_refunded"] == built.files.partially_refunded_orders
    assert int(net or 0) == built.files.revenue_cents
    events = _count(
        database,
        select(func.count())
        .select_from(CustomerEvent)
        .where(CustomerEvent.workspace_id == ws, CustomerEvent.source != attribution.SOURCE),
    )
    assert events == built.files.events  # and the demo's live-code adds, recorded as events of their own


def test_staff_channels_costs_stores_owners_and_consent(database: Database, built: DemoBuild) -> None:
    ws = built.workspace_id
    with database.reader() as session:
        roles = {
            email: role
            for email, role in session.execute(
                select(User.email, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.workspace_id == ws)
            ).tuples()
        }
        owner_roles = set(
            session.scalars(
                select(Membership.role)
                .join(Customer, Customer.owner_user_id == Membership.user_id)
                .where(Membership.workspace_id == ws, Customer.workspace_id == ws)
            )
        )
        channels = set(session.scalars(select(Channel.key).where(Channel.workspace_id == ws)))
        costs = _count(
            database,
            select(func.count())
            .select_from(ChannelCost)
            .where(ChannelCost.workspace_id == ws, ChannelCost.source_key.is_(None)),
        )
        stores = _count(database, select(func.count()).select_from(Store).where(Store.workspace_id == ws))
        consents = _count(
            database, select(func.count()).select_from(Consent).where(Consent.workspace_id == ws)
        )
    assert len(roles) == len(generator.STAFF)
    assert roles[built.owner.email] == Role.OWNER.value
    assert roles[built.staff.email] == Role.STAFF.value
    assert owner_roles == {Role.STAFF.value}
    assert channels == {c.key for c in generator.CHANNELS}
    assert costs == 24 * len(generator.CHANNELS)  # monthly, besides the costs of the demo's live codes
    assert stores == 20
    assert consents > CUSTOMERS // 3


def test_reusing_the_demo_checks_the_password_and_gives_a_working_token(
    database: Database, built: DemoBuild
) -> None:
    assert service.find_demo(database, slug=built.slug) == built.workspace_id
    again = service.open_demo(database, slug=built.slug)
    assert again.reused and again.workspace_id == built.workspace_id
    assert again.api_token != built.api_token
    with database.transaction() as session:
        for token in (built.api_token, again.api_token):
            actor = auth.actor_for_token(session, token=token)
            assert (actor.workspace_id, actor.role) == (built.workspace_id, Role.OWNER)
        user = auth.authenticate(session, email=built.owner.email, password=service.DEMO_PASSWORD)
        assert user.email == built.owner.email


def test_building_over_an_existing_demo_is_refused(
    database: Database, built: DemoBuild, tmp_path: Path
) -> None:
    with pytest.raises(Conflict, match="already exists"):
        service.build_demo(database, directory=tmp_path, customers=50, slug=built.slug)
    assert service.find_demo(database, slug=f"none-{uuid.uuid4().hex[:6]}") is None
    with pytest.raises(NotFound):
        service.open_demo(database, slug=f"none-{uuid.uuid4().hex[:6]}")


def test_a_half_built_demo_is_not_reused(database: Database) -> None:
    slug = f"half-{uuid.uuid4().hex[:8]}"
    with database.transaction() as session:
        workspaces.create_workspace(session, slug=slug, name="half")
    with pytest.raises(Conflict, match="not a complete demo"):
        service.find_demo(database, slug=slug)


def test_the_demo_brand_has_live_codes_coupons_points_and_groups(
    database: Database, built: DemoBuild
) -> None:
    engaged = built.engagement
    assert engaged is not None
    assert engaged.scans > 0 and 0 < engaged.adds <= engaged.scans
    assert 0 < engaged.coupons_redeemed < engaged.coupons_issued and engaged.points_members > 0
    with database.reader() as session:
        today = community_stats.today(session, workspace_id=built.workspace_id)
        groups = community_stats.group_summaries(
            session, workspace_id=built.workspace_id, start=today - timedelta(days=59), end=today
        )
        activity = community_stats.activity(
            session, workspace_id=built.workspace_id, start=today - timedelta(days=29), end=today
        )
        codes = livecode_stats.totals_by_code(session, workspace_id=built.workspace_id)
        tiers = membership.list_tiers(session, workspace_id=built.workspace_id)
    assert len(groups) == engaged.groups == 6
    # 群聊数据统计 of the owners: every day up to WeCom's yesterday has messages and both shares
    assert activity.total.messages > 0 and activity.owners
    counted = [d for d in activity.days if d.groups]
    assert len(counted) >= 28 and all(0 < (d.member_share or 0) < 1 for d in counted)
    assert sum(g.customers for g in groups) > 0 and all(g.has_qr and g.tags for g in groups)
    assert sum(g.joins for g in groups) > 0 and sum(g.leaves for g in groups) > 0
    assert sum(f.scans for f in codes.values()) == engaged.scans
    assert [t.name for t in tiers] == ["银卡", "金卡", "黑金卡"]


def test_the_demo_brand_has_templates_a_referral_campaign_a_live_journey_and_a_broadcast(
    database: Database, built: DemoBuild
) -> None:
    from siyu.broadcasts import service as broadcasts
    from siyu.content.models import MessageTemplate, Snippet
    from siyu.journeys import service as journeys
    from siyu.referrals.models import ReferralInvite

    reached = built.outreach
    assert reached is not None and reached.referral_invites > 0 and reached.broadcast_audience > 0
    ws = built.workspace_id
    assert (
        _count(
            database,
            select(func.count()).select_from(MessageTemplate).where(MessageTemplate.workspace_id == ws),
        )
        == reached.templates
    )
    assert (
        _count(database, select(func.count()).select_from(Snippet).where(Snippet.workspace_id == ws))
        == reached.snippets
    )
    assert (
        _count(
            database,
            select(func.count()).select_from(ReferralInvite).where(ReferralInvite.workspace_id == ws),
        )
        == reached.referral_invites
    )
    with database.reader() as session:
        [journey] = journeys.list_journeys(session, workspace_id=ws)
        owner_id = session.scalar(select(User.id).where(User.email == built.owner.email))
        owner = auth.actor_for(session, user_id=owner_id, workspace_id=ws, via="cli")
        [broadcast] = broadcasts.list_broadcasts(session, actor=owner)
        progress = broadcasts.progress(session, actor=owner, broadcast_id=broadcast.id)
    assert journey.status == "live"
    assert (
        progress.audience == reached.broadcast_audience and sum(progress.counts.values()) == progress.audience
    )


DATA_END = datetime(2025, 7, 1, tzinfo=UTC)  # the demo's data ends on 2025-06-30


def test_consents_are_dated_when_given_and_wecom_contacts_are_friends(
    database: Database, built: DemoBuild
) -> None:
    assert built.files is not None
    ws = built.workspace_id
    with database.reader() as session:
        latest_consent = session.scalar(
            select(func.max(Consent.occurred_at)).where(Consent.workspace_id == ws)
        )
        follows = session.execute(
            select(
                WecomFollow.customer_id,
                WecomFollow.added_at,
                WecomFollow.removed_by,
                WecomFollow.wecom_userid,
                WecomFollow.external_userid,
            ).where(WecomFollow.workspace_id == ws)
        ).all()
        adds = set(
            session.execute(
                select(LiveCodeAdd.staff_wecom_userid, LiveCodeAdd.external_userid).where(
                    LiveCodeAdd.workspace_id == ws
                )
            ).tuples()
        )
    assert latest_consent is not None and latest_consent < DATA_END
    history = [f for f in follows if f.added_at < DATA_END]
    assert len(history) == built.files.friendships > 0
    assert all(f.customer_id is not None for f in history)
    ended = [f.removed_by for f in history if f.removed_by is not None]
    assert len(ended) == built.files.ended_friendships and set(ended) == {"customer", "staff"}
    # every live-code add is a friendship (one the history held already stays as it was)
    assert adds and adds <= {(f.wecom_userid, f.external_userid) for f in follows}


def test_pass_through_and_retention_look_like_a_real_brand(database: Database, built: DemoBuild) -> None:
    with database.reader() as session:
        actor = auth.command_line_actor(session, workspace_id=built.workspace_id)
        dashboard = overview.get_dashboard(
            session, actor=actor, months=12, today=date(2025, 6, 30), now=DATA_END
        )
        whole = metrics.pass_through(
            session, actor=actor, start=datetime(2023, 7, 1, tzinfo=UTC), end=DATA_END, per_code=False
        )
        cohorts = metrics.cohort_table(
            session,
            actor=actor,
            period="month",
            first=date(2023, 7, 1),
            last=date(2025, 5, 31),
            horizon=1,
            now=DATA_END,
        )
    cards = {card.key: card.value for card in dashboard.cards}
    assert cards["pass_through"] is not None and 0.05 < cards["pass_through"] < 0.95
    assert cards["retention"] is not None and 0.05 < cards["retention"] < 0.95
    assert whole.rate is not None and 0.05 < whole.rate < 0.95
    retained = sum(row.reachable[0] for row in cohorts) / sum(row.customers for row in cohorts)
    assert all(row.days[0] == 30 for row in cohorts) and 0.05 < retained < 0.95


def test_orders_imported_in_parts_give_the_same_brand(
    database: Database, built: DemoBuild, tmp_path: Path
) -> None:
    """The benchmarks' brand is too large for one import: split into files of 1,000 rows (an order's
    lines kept together), the brand has the same orders, customers and rollups as from one file."""
    from siyu.customers.models import Customer, CustomerRollup

    split = service.build_demo(
        database,
        directory=tmp_path,
        customers=CUSTOMERS,
        seed=5,
        slug=f"split-{uuid.uuid4().hex[:8]}",
        orders_per_import=1000,
    )
    order_jobs = [i for i in split.imports if i.kind == "orders"]
    assert len(order_jobs) > 3 and all(i.status == "done" for i in order_jobs)
    assert sum(i.rejected_rows for i in order_jobs) == 12
    parts = sorted(tmp_path.glob("orders-*.csv"))
    assert all(len(p.read_text(encoding="utf-8").splitlines()) <= 1001 + 5 for p in parts)

    def figures(workspace_id: int) -> tuple[object, ...]:
        with database.reader() as session:
            return (
                session.scalar(
                    select(func.count()).select_from(Order).where(Order.workspace_id == workspace_id)
                ),
                session.scalar(
                    select(func.count()).select_from(Customer).where(Customer.workspace_id == workspace_id)
                ),
                session.execute(
                    select(
                        func.sum(CustomerRollup.order_count),
                        func.sum(CustomerRollup.net_revenue_cents),
                        func.count(CustomerRollup.first_order_at),
                    ).where(CustomerRollup.workspace_id == workspace_id)
                ).one(),
            )

    assert figures(split.workspace_id) == figures(built.workspace_id)
