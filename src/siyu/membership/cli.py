"""`siyu membership`: points from orders (the outbox consumer), the expiry sweep and tier re-evaluation."""

from __future__ import annotations

import json

import typer

from siyu.core.db import get_database
from siyu.core.timeutil import parse_instant
from siyu.membership import service
from siyu.workspaces import service as workspaces


def register(app: typer.Typer) -> None:
    membership_app = typer.Typer(help="Membership (会员): points and tiers.", no_args_is_help=True)
    app.add_typer(membership_app, name="membership")

    def _workspace_id(slug: str | None) -> int:
        with get_database().reader() as session:
            return workspaces.workspace_for_command(session, slug=slug).id

    @membership_app.command("sync-orders")
    def sync_orders(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
    ) -> None:
        """Read order events after the cursor: paid orders earn points once, refunds take them back,
        and the tiers of the customers touched are re-evaluated. Safe to run again and on a schedule."""
        workspace_id = _workspace_id(workspace)
        read = 0
        while True:
            with get_database().transaction() as session:
                batch = service.process_order_events(session, workspace_id=workspace_id)
            read += batch
            if not batch:
                break
        typer.echo(json.dumps({"events_read": read}))

    @membership_app.command("expire")
    def expire(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        now: str | None = typer.Option(None, "--now", help="Expire as at this time (ISO 8601 with offset)."),
    ) -> None:
        """The expiry sweep: an expiry entry for every account with points past their expiry."""
        moment = parse_instant(now, where="--now") if now is not None else None
        workspace_id = _workspace_id(workspace)
        with get_database().transaction() as session:
            points = service.expire_points(session, workspace_id=workspace_id, at=moment)
        typer.echo(json.dumps({"points_expired": points}))

    @membership_app.command("tiers")
    def tiers(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        now: str | None = typer.Option(
            None, "--now", help="Evaluate as at this time (ISO 8601 with offset)."
        ),
    ) -> None:
        """Re-evaluate every member's tier on the rolling 12 months (downgrades as spend ages out)."""
        moment = parse_instant(now, where="--now") if now is not None else None
        workspace_id = _workspace_id(workspace)
        with get_database().transaction() as session:
            changed = service.evaluate_tiers(session, workspace_id=workspace_id, at=moment)
        typer.echo(json.dumps({"changed": changed}))
