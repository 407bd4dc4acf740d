"""The Parquet export: the workspace's rows only, money as integer cents, times as UTC instants, and a
manifest that counts them; an export into a folder that holds files is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from siyu.analytics import service as analytics
from siyu.core.db import Database
from siyu.core.errors import Conflict
from tests.factories import make_customer, make_order


def test_export_of_one_workspace_with_its_manifest(db: Database, workspace_id: int, tmp_path: Path) -> None:
    placed = datetime(2026, 3, 1, 4, 30, tzinfo=UTC)
    with db.transaction() as session:
        customer = make_customer(session, workspace_id=workspace_id)
        make_order(
            session, workspace_id=workspace_id, customer_id=customer.id, paid_cents=3250, placed_at=placed
        )
    with db.reader() as session:
        manifest = analytics.export_parquet(
            session, workspace_id=workspace_id, workspace_slug="t", directory=tmp_path / "x"
        )
    assert set(manifest.tables) == set(analytics.ANALYTIC_TABLES)
    assert manifest.workspace_id == workspace_id and manifest.schema_version
    assert analytics.read_manifest(tmp_path / "x") == manifest
    orders = pl.read_parquet(tmp_path / "x" / "customer_order")
    assert manifest.tables["customer_order"].rows == orders.height == 1
    assert orders["workspace_id"].to_list() == [workspace_id]
    assert orders["paid_cents"].dtype == pl.Int64 and orders["paid_cents"].to_list() == [3250]
    assert orders["placed_at"].dtype == pl.Datetime("us", "UTC") and orders["placed_at"].to_list() == [placed]
    assert manifest.tables["workspace"].rows == 1
    with db.reader() as session, pytest.raises(Conflict, match="not empty"):
        analytics.export_parquet(
            session, workspace_id=workspace_id, workspace_slug="t", directory=tmp_path / "x"
        )
