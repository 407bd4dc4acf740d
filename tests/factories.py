"""Test data factories: members with API tokens, channels, stores, customers, orders and events.

Members and channels go through the services; customers, orders and events are inserted directly (with a
simple rollup kept in step) so that tests of reads do not depend on the importer. Pass the session of an
open transaction: `with db.transaction() as session: customer = make_customer(session, workspace_id=ws)`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.auth.service import Actor
from siyu.channels import service as channels
from siyu.channels.models import Channel, Store
from siyu.core.db import Database
from siyu.core.timeutil import utcnow
from siyu.customers.models import Customer, CustomerRollup, Identity
from siyu.events.models import CustomerEvent
from siyu.orders.models import PURCHASE_STATUSES, REVENUE_STATUSES, Order, OrderLine
from siyu.tags.models import Tag
from siyu.web.app import create_app

_seq = itertools.count(1)


def unique(prefix: str = "x") -> str:
    """A value no other test uses (tests share one database per engine)."""
    return f"{prefix}{next(_seq)}{uuid.uuid4().hex[:6]}"


def next_phone() -> str:
    """A fresh valid CN mobile number in E.164, e.g. +8613912345678."""
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


@dataclass(frozen=True)
class Member:
    """A member of a workspace with an API token: `headers` go straight into a test client call."""

    actor: Actor
    token: str

    @property
    def user_id(self) -> int:
        return self.actor.user_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_member(
    session: Session, *, workspace_id: int, role: Role | str = Role.OWNER, name: str = ""
) -> Member:
    """A new user with `role` in the workspace and an API token acting as them."""
    email = f"{unique('u')}@example.com"
    user = auth.create_user(session, email=email, password="password-123", display_name=name or email)
    auth.add_member(session, workspace_id=workspace_id, user_id=user.id, role=Role(role))
    token, _ = auth.create_api_token(session, workspace_id=workspace_id, user_id=user.id, name="test")
    return Member(
        actor=auth.actor_for(session, user_id=user.id, workspace_id=workspace_id, via="token"), token=token
    )


def member(db: Database, workspace_id: int, role: Role | str = Role.OWNER) -> Member:
    """`make_member` in a transaction of its own."""
    with db.transaction() as session:
        return make_member(session, workspace_id=workspace_id, role=role)


def make_channel(
    session: Session,
    *,
    workspace_id: int,
    key: str | None = None,
    name: str | None = None,
    source_type: str = "douyin",
    aliases: Iterable[str] = (),
) -> Channel:
    key = key or unique("ch")
    return channels.create_channel(
        session,
        workspace_id=workspace_id,
        key=key,
        name=name or key.title(),
        source_type=source_type,
        aliases=aliases,
    )


def make_store(session: Session, *, workspace_id: int, code: str | None = None, city: str = "上海") -> Store:
    code = code or unique("st")
    return channels.create_store(
        session, workspace_id=workspace_id, code=code, name=f"Store {code}", city=city
    )


def make_customer(
    session: Session,
    *,
    workspace_id: int,
    name: str | None = "张三",
    phone: str | None = None,
    identities: Mapping[str, str] | None = None,
    owner_user_id: int | None = None,
    city: str | None = None,
    first_channel_id: int | None = None,
    created_at: datetime | None = None,
    attributes: dict[str, Any] | None = None,
) -> Customer:
    """A customer with a phone (a fresh one unless given; pass phone="" for none) and other identities."""
    now = created_at or utcnow()
    customer = Customer(
        workspace_id=workspace_id,
        name=name,
        gender="unknown",
        city=city,
        attributes=attributes or {},
        owner_user_id=owner_user_id,
        first_channel_id=first_channel_id,
        created_at=now,
        updated_at=now,
    )
    session.add(customer)
    session.flush()
    values = dict(identities or {})
    if phone != "":
        values.setdefault("phone", phone or next_phone())
    for kind, value in values.items():
        session.add(
            Identity(
                workspace_id=workspace_id, customer_id=customer.id, kind=kind, value=value, source="test"
            )
        )
    session.add(
        CustomerRollup(workspace_id=workspace_id, customer_id=customer.id, categories=[], updated_at=now)
    )
    session.flush()
    return customer


def _refresh_rollup(session: Session, *, customer_id: int) -> None:
    """A plain recomputation from orders: enough for tests of reads."""
    rollup = session.get(CustomerRollup, customer_id)
    assert rollup is not None
    orders = list(
        session.scalars(select(Order).where(Order.customer_id == customer_id).order_by(Order.placed_at))
    )
    purchases = [o for o in orders if o.status in PURCHASE_STATUSES]
    revenue = [o for o in orders if o.status in REVENUE_STATUSES]
    rollup.order_count = len(purchases)
    rollup.gross_revenue_cents = sum(o.paid_cents for o in revenue)
    rollup.refunded_cents = sum(o.refunded_cents for o in revenue)
    rollup.net_revenue_cents = rollup.gross_revenue_cents - rollup.refunded_cents
    rollup.avg_order_value_cents = rollup.net_revenue_cents // len(purchases) if purchases else 0
    rollup.first_order_at = purchases[0].placed_at if purchases else None
    rollup.last_order_at = purchases[-1].placed_at if purchases else None
    rollup.first_channel_id = purchases[0].channel_id if purchases else None
    rollup.last_channel_id = purchases[-1].channel_id if purchases else None


def make_order(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int | None,
    paid_cents: int = 3200,
    refunded_cents: int = 0,
    status: str = "paid",
    placed_at: datetime | None = None,
    channel_id: int | None = None,
    store_id: int | None = None,
    external_id: str | None = None,
    lines: Iterable[Mapping[str, Any]] | None = None,
) -> Order:
    """An order with one line (or the given lines: dicts of OrderLine fields); the rollup follows."""
    placed_at = placed_at or utcnow() - timedelta(days=1)
    order = Order(
        workspace_id=workspace_id,
        external_id=external_id or unique("o"),
        customer_id=customer_id,
        channel_id=channel_id,
        store_id=store_id,
        status=status,
        currency="CNY",
        total_cents=paid_cents,
        discount_cents=0,
        paid_cents=paid_cents,
        refunded_cents=refunded_cents,
        placed_at=placed_at,
        updated_at=placed_at,
        source="test",
    )
    session.add(order)
    session.flush()
    line_specs = list(
        lines or [{"sku": "MT-01", "name": "Milk tea", "category": "tea", "unit_price_cents": paid_cents}]
    )
    for number, spec in enumerate(line_specs, start=1):
        quantity = int(spec.get("quantity", 1))
        unit = int(spec.get("unit_price_cents", 0))
        session.add(
            OrderLine(
                workspace_id=workspace_id,
                order_id=order.id,
                line_no=number,
                sku=spec.get("sku", ""),
                name=spec.get("name", ""),
                category=spec.get("category", ""),
                quantity=quantity,
                unit_price_cents=unit,
                amount_cents=int(spec.get("amount_cents", quantity * unit)),
            )
        )
    session.flush()
    if customer_id is not None:
        _refresh_rollup(session, customer_id=customer_id)
    return order


def make_event(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int | None,
    type: str = "page_view",
    occurred_at: datetime | None = None,
    properties: dict[str, Any] | None = None,
) -> CustomerEvent:
    event = CustomerEvent(
        workspace_id=workspace_id,
        customer_id=customer_id,
        type=type,
        occurred_at=occurred_at or utcnow() - timedelta(hours=1),
        properties=properties or {},
        source="test",
        dedupe_key=unique("e"),
    )
    session.add(event)
    session.flush()
    if customer_id is not None:
        rollup = session.get(CustomerRollup, customer_id)
        if rollup is not None and (rollup.last_event_at is None or event.occurred_at > rollup.last_event_at):
            rollup.last_event_at = event.occurred_at
    return event


def api_client(db: Database) -> TestClient:
    """An in-process client of the whole app on `db` (send `headers=member.headers`)."""
    return TestClient(create_app(database=db))


def make_tag(session: Session, *, actor: Actor, name: str | None = None, group: str | None = None) -> Tag:
    """A tag (in the named group, created if missing), through the tags service."""
    from siyu.tags import service as tags

    group_name = group or unique("组")
    existing = [g for g in tags.list_groups(session, workspace_id=actor.workspace_id) if g.name == group_name]
    group_id = existing[0].id if existing else tags.create_group(session, actor=actor, name=group_name).id
    return tags.create_tag(session, actor=actor, group_id=group_id, name=name or unique("tag"))
