"""Group figures in SQL: net growth by day walked back from today's members, the members' purchases
since they joined against customers in no group, and the summaries of the list page."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from siyu.communities import stats
from siyu.core.db import Database
from tests.communities.helpers import chat, store
from tests.factories import make_customer, make_order


def test_growth_by_day_and_what_members_buy(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        today = stats.today(session, workspace_id=workspace_id)
        zone = ZoneInfo(stats.zone_of(session, workspace_id=workspace_id))

        def noon(days_ago: int) -> datetime:
            day = today - timedelta(days=days_ago)
            return datetime(day.year, day.month, day.day, 12, tzinfo=zone)

        buyer = make_customer(
            session, workspace_id=workspace_id, identities={"wecom_external_userid": "wmBuyer"}
        )
        quiet = make_customer(
            session, workspace_id=workspace_id, identities={"wecom_external_userid": "wmQuiet"}
        )
        outsider = make_customer(session, workspace_id=workspace_id)
        answer = chat("会员群", [], chat_id=None)
        answer["member_list"].append({"userid": "wmBuyer", "type": 2, "join_time": int(noon(5).timestamp())})
        answer["member_list"].append({"userid": "wmQuiet", "type": 2, "join_time": int(noon(5).timestamp())})
        answer["member_list"].append({"userid": "wmGone", "type": 2, "join_time": int(noon(5).timestamp())})
        chat_id = store(session, workspace_id, answer, at=noon(4))
        answer["member_list"] = [m for m in answer["member_list"] if m["userid"] != "wmGone"]
        answer["member_list"].append({"userid": "wmNew", "type": 2, "join_time": int(noon(2).timestamp())})
        store(session, workspace_id, answer, at=noon(2))
        # the buyer: one order before joining (not the group's), two after; the outsider: one
        make_order(
            session, workspace_id=workspace_id, customer_id=buyer.id, paid_cents=1000, placed_at=noon(6)
        )
        make_order(
            session, workspace_id=workspace_id, customer_id=buyer.id, paid_cents=2000, placed_at=noon(3)
        )
        make_order(
            session, workspace_id=workspace_id, customer_id=buyer.id, paid_cents=3000, placed_at=noon(1)
        )
        make_order(
            session, workspace_id=workspace_id, customer_id=outsider.id, paid_cents=5000, placed_at=noon(1)
        )
        assert quiet.id
    with db.reader() as session:
        days = stats.growth(
            session, workspace_id=workspace_id, chat_id=chat_id, start=today - timedelta(days=6), end=today
        )
        orders = stats.member_orders(
            session, workspace_id=workspace_id, chat_id=chat_id, start=today - timedelta(days=7), end=today
        )
        [summary] = stats.group_summaries(
            session, workspace_id=workspace_id, start=today - timedelta(days=6), end=today
        )
    assert [(d.joins, d.leaves, d.members) for d in days] == [
        (0, 0, 0),
        (3, 0, 3),  # five days ago: three joined
        (0, 0, 3),
        (0, 0, 3),
        (1, 1, 3),  # two days ago: one left, one joined (seen at the same sync)
        (0, 0, 3),
        (0, 0, 3),
    ]
    assert sum(d.net for d in days) == 3
    assert orders.members.model_dump() == {
        "customers": 2,
        "buyers": 1,
        "orders": 2,
        "gmv_cents": 5000,
        "repurchase_rate": 1.0,
    }
    assert (orders.non_members.buyers, orders.non_members.orders, orders.non_members.gmv_cents) == (
        1,
        1,
        5000,
    )
    assert orders.non_members.repurchase_rate == 0.0
    assert (summary.members, summary.external_members, summary.customers) == (4, 3, 2)
    assert (summary.joins, summary.leaves, summary.net_growth) == (4, 1, 3)
    assert (summary.member_orders, summary.member_gmv_cents) == (2, 5000)
