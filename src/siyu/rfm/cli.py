"""`siyu rfm`: compute RFM scores and layers for a workspace and print the layers' counts."""

from __future__ import annotations

import json

import typer

from siyu.auth import service as auth
from siyu.core.db import get_database
from siyu.core.timeutil import parse_instant
from siyu.rfm import service
from siyu.workspaces import service as workspaces


def register(app: typer.Typer) -> None:
    @app.command("rfm")
    def rfm_command(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        window_days: int = typer.Option(365, "--window-days", help="Purchases of the last N days count."),
        method: str = typer.Option(
            "quintile", "--method", help="quintile, or threshold (the default cut points)."
        ),
        now: str | None = typer.Option(None, "--now", help="Score as at this time (ISO 8601 with offset)."),
        acting_as: str | None = typer.Option(
            None, "--as", help="Act as this member (email); default: the owner."
        ),
    ) -> None:
        """Score every buyer of the window 1–5 on recency, frequency and money and place them in the eight
        layers (重要价值 … 一般挽留), replacing the previous run."""
        moment = parse_instant(now, where="--now") if now is not None else None
        with get_database().transaction() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
            run = service.compute_rfm(
                session,
                actor=actor,
                now=moment,
                window_days=window_days,
                method=method,  # type: ignore[arg-type]  # the service refuses an unknown method by name
            )
        typer.echo(
            json.dumps(
                {
                    "scored": run.scored,
                    "method": run.method,
                    "window_days": run.window_days,
                    "now": run.now.isoformat(),
                    "layers": {layer.layer: layer.customers for layer in run.layers},
                },
                ensure_ascii=False,
                indent=2,
            )
        )
