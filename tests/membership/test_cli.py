"""`siyu membership sync-orders|expire|tiers` and `siyu coupons apply-refunds|report` on the test's
database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.ingest import service as ingest
from siyu.membership import service as membership
from siyu.membership.schemas import RulesIn, TierIn
from siyu.workspaces.models import Workspace
from tests.factories import member, next_phone

runner = CliRunner()


def test_membership_and_coupon_commands(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    phone = next_phone()
    with db.transaction() as session:
        slug = session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
        membership.set_rules(session, actor=owner.actor, body=RulesIn(points_per_yuan=1, expiry_months=1))
        membership.create_tier(session, actor=owner.actor, body=TierIn(name="银卡", threshold=5000))
        placed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        ingest.import_records(
            session,
            workspace_id=workspace_id,
            kind="orders",
            records=[{"external_id": "CLI-1", "phone": phone, "paid_cents": 8800, "placed_at": placed}],
            strict=True,
        )
    assert slug
    ws = ["--workspace", slug]
    result = runner.invoke(app, ["membership", "sync-orders", *ws])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events_read"] == 1
    assert json.loads(runner.invoke(app, ["membership", "sync-orders", *ws]).output)["events_read"] == 0
    later = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    result = runner.invoke(app, ["membership", "expire", *ws, "--now", later])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"points_expired": 88}
    # the spend leaves the 12-month window a year on: the tier goes
    result = runner.invoke(
        app, ["membership", "tiers", *ws, "--now", (datetime.now(UTC) + timedelta(days=400)).isoformat()]
    )
    assert json.loads(result.output) == {"changed": 1}
    assert runner.invoke(app, ["membership", "expire", *ws, "--now", "tomorrow"]).exit_code != 0
    result = runner.invoke(app, ["coupons", "apply-refunds", *ws])
    assert result.exit_code == 0 and json.loads(result.output) == {"events_read": 0}
    assert json.loads(runner.invoke(app, ["coupons", "report", *ws]).output) == []
