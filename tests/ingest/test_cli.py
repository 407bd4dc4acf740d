"""`siyu import`: summary, reject file, exit status under --strict, --map overrides, workspace choice."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.db import Database
from siyu.workspaces.models import Workspace
from tests.ingest.test_loader import counts
from tests.ingest.test_service import ORDERS_CSV

runner = CliRunner()


def slug_of(db: Database, workspace_id: int) -> str:
    with db.reader() as session:
        return str(session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id)))


def test_import_orders_prints_summary(db: Database, workspace_id: int, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV, encoding="utf-8")
    rejects = tmp_path / "bad.csv"
    args = [
        "import",
        "orders",
        str(path),
        "--workspace",
        slug_of(db, workspace_id),
        "--reject-file",
        str(rejects),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "inserted 3, updated 0, unchanged 0, rejected 1 of 4 rows" in result.output
    assert str(rejects) in result.output and rejects.exists()
    assert counts(db, workspace_id)["order"] == 3


def test_strict_with_rejects_exits_1_and_writes_nothing(
    db: Database, workspace_id: int, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV, encoding="utf-8")
    slug = slug_of(db, workspace_id)
    result = runner.invoke(
        app,
        [
            "import",
            "orders",
            str(path),
            "--strict",
            "--workspace",
            slug,
            "--reject-file",
            str(tmp_path / "r.csv"),
        ],
    )
    assert result.exit_code == 1
    assert counts(db, workspace_id)["order"] == 0


def test_map_override_and_workspace_required(db: Database, workspace_id: int, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "单号X,手机号,实付金额,下单时间\nM1,13966661234,3.00,2025-03-01 10:00\n", encoding="utf-8"
    )
    slug = slug_of(db, workspace_id)
    result = runner.invoke(
        app, ["import", "orders", str(path), "--workspace", slug, "--map", "单号X=external_id"]
    )
    assert result.exit_code == 0, result.output
    assert "inserted 1" in result.output
    # the test database holds many workspaces: without --workspace the command asks to choose
    result = runner.invoke(app, ["import", "orders", str(path)])
    assert result.exit_code != 0
    assert "--workspace" in str(result.exception) + result.output
