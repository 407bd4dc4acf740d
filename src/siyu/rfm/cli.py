"""`siyu rfm`: compute RFM scores and layers for a workspace and print the layers' counts;
`siyu rfm-settings`: show or change the workspace's RFM settings (what the daily run uses)."""

from __future__ import annotations

import json
from dataclasses import replace

import typer

from siyu.auth import service as auth
from siyu.core.db import get_database
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import parse_instant
from siyu.rfm import service
from siyu.workspaces import service as workspaces


def register(app: typer.Typer) -> None:
    @app.command("rfm")
    def rfm_command(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        window_days: int | None = typer.Option(
            None, "--window-days", help="Purchases of the last N days count (default: the settings')."
        ),
        method: str | None = typer.Option(
            None,
            "--method",
            help="quintile, or threshold (the settings' cut points); default: the settings'.",
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
                    "layer_cut": run.layer_cut,
                    "now": run.now.isoformat(),
                    "layers": {layer.layer: layer.customers for layer in run.layers},
                },
                ensure_ascii=False,
                indent=2,
            )
        )

    @app.command("rfm-settings")
    def rfm_settings_command(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        window_days: int | None = typer.Option(None, "--window-days", help="Purchases of the last N days."),
        method: str | None = typer.Option(None, "--method", help="quintile or threshold."),
        recency_days: str | None = typer.Option(
            None, "--recency-days", help="Four rising day counts, e.g. 15,30,60,90 (≤ the first: R 5)."
        ),
        frequency: str | None = typer.Option(
            None, "--frequency", help="Four rising purchase counts, e.g. 1,2,3,5 (≤ the first: F 1)."
        ),
        monetary_yuan: str | None = typer.Option(
            None,
            "--monetary-yuan",
            help="Four rising amounts in yuan, e.g. 50,100,200,500 (≤ the first: M 1).",
        ),
        layer_cut: str | None = typer.Option(
            None,
            "--layer-cut",
            help="A score (e.g. 3) at or above which a score is high; 'mean' for the mean.",
        ),
        acting_as: str | None = typer.Option(
            None, "--as", help="Act as this member (email); default: the owner."
        ),
    ) -> None:
        """Print the workspace's RFM settings as JSON; with options, change those and save (audited)."""
        with get_database().transaction() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
            config = service.settings_of(session, workspace_id=found.id)
            changes: dict[str, object] = {}
            if window_days is not None:
                changes["window_days"] = window_days
            if method is not None:
                changes["method"] = method
            if layer_cut is not None:
                changes["layer_cut"] = None if layer_cut == "mean" else _number(layer_cut, "--layer-cut")
            cuts = {
                "recency_days": _cuts(recency_days, "--recency-days"),
                "frequency": _cuts(frequency, "--frequency"),
                "monetary_yuan": _cuts(monetary_yuan, "--monetary-yuan"),
            }
            given = {name: value for name, value in cuts.items() if value is not None}
            if given:
                changes["thresholds"] = replace(config.thresholds, **given)  # type: ignore[arg-type]
            if changes:
                config = service.update_settings(
                    session,
                    actor=actor,
                    config=replace(config, **changes),  # type: ignore[arg-type]
                )
        typer.echo(json.dumps(service.settings_detail(config), indent=2))


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a number", where=where) from None


def _cuts(text: str | None, where: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    return tuple(_number(part.strip(), where) for part in text.split(","))
