"""`siyu coupons`: apply order refunds from the outbox to coupon redemptions, and print the reports."""

from __future__ import annotations

import json

import typer

from siyu.core.db import get_database
from siyu.coupons import service
from siyu.workspaces import service as workspaces


def register(app: typer.Typer) -> None:
    coupons_app = typer.Typer(help="Coupons (优惠券).", no_args_is_help=True)
    app.add_typer(coupons_app, name="coupons")

    @coupons_app.command("apply-refunds")
    def apply_refunds(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
    ) -> None:
        """Read order.refunded events after the cursor: fully refunded orders give their coupons back.
        Safe to run again and on a schedule (each batch is one transaction)."""
        database = get_database()
        with database.reader() as session:
            workspace_id = workspaces.workspace_for_command(session, slug=workspace).id
        read = 0
        while True:
            with database.transaction() as session:
                batch = service.apply_order_events(session, workspace_id=workspace_id)
            read += batch
            if not batch:
                break
        typer.echo(json.dumps({"events_read": read}))

    @coupons_app.command("report")
    def report(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
    ) -> None:
        """Per template: issued, redeemed, redemption rate, attributed GMV, cost and ROI, as JSON."""
        with get_database().reader() as session:
            workspace_id = workspaces.workspace_for_command(session, slug=workspace).id
            rows = service.reports(session, workspace_id=workspace_id)
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=2))
