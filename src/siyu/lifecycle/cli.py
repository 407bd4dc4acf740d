"""`siyu lifecycle`: sweep every customer into their lifecycle stage as of now (or `--now`);
`siyu lifecycle-report`: stages, funnel and flows as JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import typer

from siyu.auth import service as auth
from siyu.core.db import get_database
from siyu.core.timeutil import parse_instant, utcnow
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

    @app.command("lifecycle-report")
    def lifecycle_report(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        days: int = typer.Option(90, "--days", help="The flows of the last DAYS days."),
        acting_as: str | None = typer.Option(
            None, "--as", help="Act as this member (email); default: the owner."
        ),
    ) -> None:
        """Print the customers per stage, the funnel lead → new → active → loyal and the moves between
        stages of the last DAYS days, as JSON (what the lifecycle page shows)."""
        end = utcnow()
        with get_database().reader() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
            report = {
                "stages": service.stage_counts(session, actor=actor),
                "funnel": [
                    {"stage": s.stage, "customers": s.customers} for s in service.funnel(session, actor=actor)
                ],
                "flows": [
                    {"from": f.from_stage, "to": f.to_stage, "customers": f.customers}
                    for f in service.flows(session, actor=actor, start=end - timedelta(days=days), end=end)
                ],
            }
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
