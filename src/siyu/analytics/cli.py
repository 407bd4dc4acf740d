"""`siyu analytics export`: a workspace's analytic tables as Parquet, for Spark or another engine."""

from __future__ import annotations

from pathlib import Path

import typer

from siyu.analytics import service
from siyu.core.db import get_database
from siyu.core.errors import ValidationFailed
from siyu.workspaces import service as workspaces

analytics_app = typer.Typer(help="Analytics beyond the store: exports for Spark.", no_args_is_help=True)


@analytics_app.command("export")
def export_command(
    directory: Path = typer.Argument(..., help="An empty or new folder to write the export into."),
    export_format: str = typer.Option("parquet", "--format", help="parquet (the only format)."),
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace slug (default: the only one)."),
) -> None:
    """Write the tables the metrics read, of one workspace, as one Parquet dataset per table with a
    manifest.json (schema version, workspace, row counts, exported_at); money stays integer cents,
    times are UTC."""
    if export_format != "parquet":
        raise ValidationFailed(f"unknown export format {export_format!r}", where="--format", hint="parquet")
    with get_database().reader() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        manifest = service.export_parquet(
            session, workspace_id=found.id, workspace_slug=found.slug, directory=directory
        )
    rows = sum(table.rows for table in manifest.tables.values())
    typer.echo(
        f"exported {len(manifest.tables)} tables ({rows} rows) of {manifest.workspace_slug!r} "
        f"at schema {manifest.schema_version} to {directory}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(analytics_app, name="analytics")
