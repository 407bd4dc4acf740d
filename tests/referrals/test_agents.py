"""Agents (小B / 分销): commissions on their invitees' paid orders by rule (percent of the net, per
category), accrued from the outbox once, reversed on refunds, reported per agent."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.core.db import Database
from siyu.referrals import service
from siyu.referrals.models import CommissionEntry
from siyu.referrals.schemas import AgentIn, TierIn
from tests.factories import member, next_phone
from tests.referrals.helpers import campaign, import_orders, invite, inviter, link, process
from tests.web.conftest import log_in, make_login


def _entries(db: Database, agent_id: int) -> list[tuple[str, str, int]]:
    with db.reader() as session:
        rows = session.scalars(
            select(CommissionEntry).where(CommissionEntry.agent_id == agent_id).order_by(CommissionEntry.id)
        )
        return [(r.order_ref, r.kind, r.amount_cents) for r in rows]


def _order(external_id: str, phone: str, paid: int, **fields: object) -> dict[str, object]:
    return {
        "external_id": external_id,
        "phone": phone,
        "paid_cents": paid,
        "placed_at": datetime.now(UTC).isoformat(),
        "status": "paid",
        **fields,
    }


def test_commissions_accrue_once_and_reverse_on_refunds(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=99, points=1)])
    agent_customer = inviter(db, workspace_id, name="小B")
    with db.transaction() as session:
        agent = service.make_agent(
            session, actor=owner.actor, spec=AgentIn(customer_id=agent_customer, rate_percent=10)
        )
    mine = link(db, workspace_id, found.id, agent_customer)
    friend, stranger = next_phone(), next_phone()
    invite(db, mine, friend)
    import_orders(db, workspace_id, [_order("A1", friend, 20000), _order("S1", stranger, 50000)])
    process(db, workspace_id)
    assert _entries(db, agent.id) == [("A1", "accrue", 2000)]  # a stranger's order earns nothing
    process(db, workspace_id)
    assert len(_entries(db, agent.id)) == 1
    # a partial refund takes back the refunded part's commission, a full refund the rest
    import_orders(
        db, workspace_id, [_order("A1", friend, 20000, status="partially_refunded", refunded_cents=5000)]
    )
    process(db, workspace_id)
    import_orders(db, workspace_id, [_order("A1", friend, 20000, status="refunded", refunded_cents=20000)])
    process(db, workspace_id)
    assert _entries(db, agent.id) == [
        ("A1", "accrue", 2000),
        ("A1", "reverse", -500),
        ("A1", "reverse", -1500),
    ]
    with db.reader() as session:
        [report] = service.agent_report(session, actor=owner.actor)
    assert (
        report.name,
        report.invitees,
        report.accrued_cents,
        report.reversed_cents,
        report.balance_cents,
    ) == (
        "小B",
        1,
        2000,
        2000,
        0,
    )


def test_the_agent_page_shows_the_ledger(client: TestClient, db: Database, workspace_id: int) -> None:
    login = make_login(db, workspace_id)
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=99, points=1)])
    agent_customer = inviter(db, workspace_id, name="小B店主")
    with db.transaction() as session:
        agent = service.make_agent(
            session, actor=owner.actor, spec=AgentIn(customer_id=agent_customer, rate_percent=10)
        )
    friend = next_phone()
    invite(db, link(db, workspace_id, found.id, agent_customer), friend)
    import_orders(db, workspace_id, [_order("PG1", friend, 12300)])
    process(db, workspace_id)
    log_in(client, login)
    client.get("/lang/en", follow_redirects=False)
    page = client.get(f"/referrals/agents/{agent.id}")
    assert page.status_code == 200
    for word in ("小B店主", "commission ledger", "PG1", "Accrued", "¥12.30", "¥123.00"):
        assert word in page.text, word
    assert client.get("/referrals/agents/999999999").status_code == 404


def test_per_category_rates(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    found = campaign(db, owner, [TierIn(threshold=99, points=1)])
    agent_customer = inviter(db, workspace_id, name="分销")
    with db.transaction() as session:
        agent = service.make_agent(
            session,
            actor=owner.actor,
            spec=AgentIn(customer_id=agent_customer, rate_percent=5, category_rates_percent={"tea": 20}),
        )
    friend = next_phone()
    invite(db, link(db, workspace_id, found.id, agent_customer), friend)
    import_orders(
        db,
        workspace_id,
        [
            _order("M1", friend, 30000, line_no=1, category="tea", line_amount_cents=10000),
            _order("M1", friend, 30000, line_no=2, category="cake", line_amount_cents=20000),
        ],
    )
    process(db, workspace_id)
    # tea ¥100 at 20% + cake ¥200 at 5%
    assert _entries(db, agent.id) == [("M1", "accrue", 3000)]


def test_rates_are_checked(db: Database, workspace_id: int) -> None:
    import pytest

    from siyu.core.errors import ValidationFailed

    owner = member(db, workspace_id)
    who = inviter(db, workspace_id)
    with db.transaction() as session, pytest.raises(ValidationFailed) as refused:
        service.make_agent(
            session,
            actor=owner.actor,
            spec=AgentIn(customer_id=who, rate_percent=5, category_rates_percent={" ": 3}),
        )
    assert refused.value.where == "category_rates_percent"
