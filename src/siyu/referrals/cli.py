"""`siyu referral`: campaigns with their figures, the outbox consumer (first orders, commissions,
merges), the KOC board and the agents' report."""

from __future__ import annotations

import json

import typer

from siyu.auth import service as auth
from siyu.core.db import get_database
from siyu.referrals import service
from siyu.workspaces import service as workspaces

WORKSPACE = typer.Option(None, "--workspace", help="Workspace slug (default: the only one).")


def register(app: typer.Typer) -> None:
    referral_app = typer.Typer(
        help="Referral campaigns (裂变), agents and the KOC board.", no_args_is_help=True
    )
    app.add_typer(referral_app, name="referral")

    @referral_app.command("campaigns")
    def campaigns(workspace: str | None = WORKSPACE) -> None:
        """Every campaign with its rules, tiers and rewards granted."""
        with get_database().reader() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            rows = [
                service.campaign_out(session, c).model_dump(mode="json")
                for c in service.list_campaigns(session, workspace_id=found.id)
            ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))

    @referral_app.command("sync")
    def sync(workspace: str | None = WORKSPACE) -> None:
        """Read order and merge events after the cursor: first orders qualify invites, agents' invitees'
        orders accrue commission and refunds reverse it, merges reject invites of one person. Safe to
        run again and on a schedule."""
        with get_database().reader() as session:
            workspace_id = workspaces.workspace_for_command(session, slug=workspace).id
        read = 0
        while True:
            with get_database().transaction() as session:
                batch = service.process_events(session, workspace_id=workspace_id)
            read += batch
            if not batch:
                break
        typer.echo(json.dumps({"events_read": read}))

    @referral_app.command("board")
    def board(
        workspace: str | None = WORKSPACE,
        campaign: int | None = typer.Option(None, "--campaign", help="One campaign's id (default: all)."),
        limit: int = typer.Option(20, "--limit", min=1, max=500),
    ) -> None:
        """The KOC board: inviters ranked by the friends they brought and those friends' net revenue."""
        with get_database().reader() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id)
            rows = [
                r.model_dump() for r in service.board(session, actor=actor, campaign_id=campaign, limit=limit)
            ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))

    @referral_app.command("agents")
    def agents(workspace: str | None = WORKSPACE) -> None:
        """Every agent with their invitees and commission accrued, reversed and standing."""
        with get_database().reader() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id)
            rows = [a.model_dump() for a in service.agent_report(session, actor=actor)]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
