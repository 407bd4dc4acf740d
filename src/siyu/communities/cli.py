"""`siyu community`: sync the customer groups from WeCom, list them with their figures, list the group
live codes."""

from __future__ import annotations

import json
from datetime import timedelta

import typer

from siyu.auth import service as auth
from siyu.communities import codes, service, stats
from siyu.core.db import get_database
from siyu.workspaces import service as workspaces

WORKSPACE = typer.Option(None, "--workspace", help="Workspace slug (default: the only one).")


def register(app: typer.Typer) -> None:
    community = typer.Typer(help="Communities (社群): customer groups, their figures and group live codes.")
    app.add_typer(community, name="community")

    @community.command("sync")
    def sync_command(
        workspace: str | None = WORKSPACE,
        acting_as: str | None = typer.Option(
            None, "--as", help="Member email to act as (default: the owner)."
        ),
    ) -> None:
        """Fetch every customer group with its members from WeCom (joins and leaves since the last sync)."""
        with get_database().transaction() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
            result = service.sync(session, actor=actor)
        typer.echo(json.dumps({"seen": result.seen, "created": result.created, "updated": result.updated}))

    @community.command("groups")
    def groups_command(
        workspace: str | None = WORKSPACE,
        days: int = typer.Option(30, "--days", min=1, max=366, help="The period: the last N days."),
    ) -> None:
        """Every group with members, matched customers, joins, leaves, net growth and members' orders."""
        with get_database().reader() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            end = stats.today(session, workspace_id=found.id)
            start = end - timedelta(days=days - 1)
            rows = stats.group_summaries(session, workspace_id=found.id, start=start, end=end)
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=2))

    @community.command("codes")
    def codes_command(workspace: str | None = WORKSPACE) -> None:
        """Every group live code (群活码) with its landing path and hand-outs per group."""
        with get_database().reader() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            rows = [codes.describe(session, code=c) for c in codes.list_codes(session, workspace_id=found.id)]
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=2))
