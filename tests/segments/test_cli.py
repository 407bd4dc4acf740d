"""`siyu segment create|count|explain|list|delete` against the database of the test."""

from __future__ import annotations

from sqlalchemy import select
from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.core.errors import NotFound
from siyu.segments.rules import RuleError
from siyu.workspaces.models import Workspace
from tests.factories import make_customer, make_order, member

runner = CliRunner()


def test_segment_commands(db: Database, workspace_id: int) -> None:
    member(db, workspace_id)
    with db.transaction() as session:
        slug = session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
        buyer = make_customer(session, workspace_id=workspace_id)
        make_order(session, workspace_id=workspace_id, customer_id=buyer.id)
        make_customer(session, workspace_id=workspace_id)
    assert slug
    ws = ["--workspace", slug]
    result = runner.invoke(app, ["segment", "count", "order_count >= 1", *ws])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1"
    result = runner.invoke(app, ["segment", "create", "买过", 'orders(within="30d").count >= 1', *ws])
    assert result.exit_code == 0, result.output
    assert "— 1 customers" in result.output
    result = runner.invoke(app, ["segment", "count", "@买过", *ws, "--now", "2020-01-01T00:00:00+08:00"])
    assert result.output.strip() == "0"
    result = runner.invoke(app, ["segment", "explain", '{"type": "segment", "segment": "买过"}', *ws])
    assert result.exit_code == 0, result.output
    assert '-- rule: segment("买过")' in result.output and "SELECT customer.id" in result.output
    assert "买过" in runner.invoke(app, ["segment", "list", *ws]).output
    result = runner.invoke(app, ["segment", "count", "order_count >= 0", *ws])
    assert "warning: this rule matches every customer" in result.output
    result = runner.invoke(app, ["segment", "count", 'tag("VIP"', *ws])
    assert isinstance(result.exception, RuleError) and result.exception.details == {"line": 1, "column": 10}
    assert runner.invoke(app, ["segment", "delete", "买过", *ws]).exit_code == 0
    result = runner.invoke(app, ["segment", "count", 'segment("买过")', *ws])
    assert isinstance(result.exception, RuleError) and "was deleted" in result.exception.message


def test_live_membership_commands(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        slug = session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
        buyer = make_customer(session, workspace_id=workspace_id)
        make_order(session, workspace_id=workspace_id, customer_id=buyer.id)
    assert slug
    ws = ["--workspace", slug]
    assert (
        runner.invoke(app, ["segment", "create", "近期", 'orders(within="30d").count >= 1', *ws]).exit_code
        == 0
    )
    result = runner.invoke(app, ["segment", "process", *ws])
    assert result.exit_code == 0, result.output
    assert "0 entered, 0 left" in result.output  # the backfill on create made it current
    result = runner.invoke(app, ["segment", "sweep", *ws, "--now", "2100-01-01T00:00:00+08:00"])
    assert result.exit_code == 0, result.output
    assert "1 segments swept: 0 entered, 1 left" in result.output
    result = runner.invoke(app, ["segment", "status", *ws])
    assert "近期\t0 members" in result.output
    result = runner.invoke(app, ["segment", "reconcile", *ws])  # now (not 2100): the buyer matches again
    assert result.exit_code == 1 and "missing 1\textra 0" in result.output
    result = runner.invoke(app, ["segment", "reconcile", "--repair", *ws])
    assert result.exit_code == 0 and "(repaired)" in result.output
    assert "近期\t1 members" in runner.invoke(app, ["segment", "status", *ws]).output
    result = runner.invoke(app, ["segment", "rule-tag", "近期", "--tag-id", "999999", *ws])
    assert isinstance(result.exception, NotFound) and "tag 999999 does not exist" in result.exception.message
    del owner
