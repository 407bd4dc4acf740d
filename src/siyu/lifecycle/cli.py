"""`siyu lifecycle`: sweep every customer into their lifecycle stage as of now (or `--now`)."""

from __future__ import annotations

import json

import typer

from siyu.auth import service as auth
from siyu.core.db import get_database
from siyu.core.timeutil import parse_instant
from siyu.lifecycle import service
from siyu.workspaces import service as workspaces


def register(app: typer.Typer) -> None:
    @app.command("lifecycle")
    def lifecycle_command(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        now: str | None = typer.Option(None, "--now", help="Sweep as at this time (ISO 8601 with offset)."),
        acting_as: str | None = typer.Option(
            None, "--as", help="Act as this member (email); default: the owner."
        ),
    ) -> None:
        """Place every customer in their stage (lead, new, active, loyal, dormant 沉睡, churned,
        reactivated), recording each change with its time and cause; prints the counts per stage."""
        moment = parse_instant(now, where="--now") if now is not None else None
        with get_database().transaction() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
            result = service.sweep(session, actor=actor, now=moment)
        typer.echo(
            json.dumps(
                {"customers": result.customers, "transitions": result.transitions, "stages": result.by_stage},
                indent=2,
            )
        )
