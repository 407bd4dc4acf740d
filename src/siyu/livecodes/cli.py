"""`siyu livecodes`: list a workspace's live codes with their all-time figures."""

from __future__ import annotations

import json

import typer

from siyu.core.db import get_database
from siyu.livecodes import service, stats
from siyu.workspaces import service as workspaces


def register(app: typer.Typer) -> None:
    @app.command("livecodes")
    def livecodes_command(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
    ) -> None:
        """Every live code (活码) with its landing path, state and figures (scans, scanners, new and
        returning adds, deletions)."""
        with get_database().reader() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            figures = stats.totals_by_code(session, workspace_id=found.id)
            rows = [
                {
                    "id": code.id,
                    "name": code.name,
                    "placement": code.placement,
                    "landing_path": service.landing_path(code),
                    "state": code.state,
                    "active": code.is_active,
                    **figures.get(code.id, stats.Figures()).model_dump(),
                }
                for code in service.list_live_codes(session, workspace_id=found.id)
            ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
