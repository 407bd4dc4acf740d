"""A small brand for the overview tests: customers joining over four months through two channels, some
with a marketing consent, orders (some repeat), a channel cost, an RFM run and a lifecycle sweep."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.channels import service as channels
from siyu.core.db import Database
from siyu.customers import service as customers
from siyu.lifecycle import service as lifecycle
from siyu.rfm import service as rfm
from tests.factories import make_channel, make_customer, make_member, make_order, unique

JANUARY = datetime(2026, 1, 5, 4, tzinfo=UTC)
NEWEST = datetime(2026, 4, 28, 4, tzinfo=UTC)


def build_world(db: Database, workspace_id: int, *, size: int = 3) -> Actor:
    """`size` customers per month and channel, January to April 2026; returns an analyst."""
    with db.transaction() as session:
        owner = make_member(session, workspace_id=workspace_id).actor
        analyst = make_member(session, workspace_id=workspace_id, role=Role.ANALYST).actor
        shop = make_channel(session, workspace_id=workspace_id, key=unique("shop"), name="小程序商城")
        store = make_channel(session, workspace_id=workspace_id, key=unique("store"), name="门店")
        channels.add_cost(
            session,
            workspace_id=workspace_id,
            channel_id=shop.id,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 4, 30),
            amount_cents=20_000,
        )
        for month in range(4):
            for channel in (shop, store):
                for n in range(size):
                    joined = JANUARY + timedelta(days=30 * month + n)
                    customer = make_customer(
                        session, workspace_id=workspace_id, first_channel_id=channel.id, created_at=joined
                    )
                    if n % 2 == 0:
                        customers.record_consent(
                            session,
                            actor=owner,
                            customer_id=customer.id,
                            contact_channel="sms",
                            purpose="marketing",
                            status="granted",
                            occurred_at=joined + timedelta(hours=1),
                        )
                    for k in range(n % 3):  # none, one or two orders
                        make_order(
                            session,
                            workspace_id=workspace_id,
                            customer_id=customer.id,
                            channel_id=channel.id,
                            paid_cents=3_000 + 1_000 * k,
                            placed_at=joined + timedelta(days=2 + 9 * k),
                        )
        make_order(
            session,
            workspace_id=workspace_id,
            customer_id=customer.id,
            channel_id=store.id,
            paid_cents=1_200,
            placed_at=NEWEST,
        )
        rfm.compute_rfm(session, actor=owner, now=NEWEST + timedelta(days=1))
        lifecycle.sweep(session, actor=owner, now=NEWEST + timedelta(days=1))
    return analyst
