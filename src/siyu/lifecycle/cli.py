"""`siyu lifecycle`: sweep every customer into their lifecycle stage as of now (or `--now`);
`siyu lifecycle-report`: stages, funnel and flows as JSON; `siyu lifecycle-settings`: the workspace's
stage thresholds."""

from __future__ import annotations

import json
from dataclasses import replace
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

    @app.command("lifecycle-settings")
    def lifecycle_settings(
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        loyal_orders: int | None = typer.Option(
            None, "--loyal-orders", help="Purchases from which a customer is loyal."
        ),
        dormant_factor: float | None = typer.Option(
            None, "--dormant-factor", help="Dormant after this many times the customer's own purchase gap."
        ),
        dormant_days: int | None = typer.Option(
            None, "--dormant-days", help="…or this many days without a purchase."
        ),
        churn_days: int | None = typer.Option(
            None, "--churn-days", help="Churned after this many days without one."
        ),
        acting_as: str | None = typer.Option(
            None, "--as", help="Act as this member (email); default: the owner."
        ),
    ) -> None:
        """Print the workspace's stage thresholds as JSON; with options, change those and save (audited).
        The next sweep applies them."""
        given = {
            name: value
            for name, value in (
                ("loyal_orders", loyal_orders),
                ("dormant_factor", dormant_factor),
                ("dormant_days", dormant_days),
                ("churn_days", churn_days),
            )
            if value is not None
        }
        with get_database().transaction() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
            thresholds = service.settings_of(session, workspace_id=found.id)
            if given:
                thresholds = service.update_settings(
                    session,
                    actor=actor,
                    thresholds=replace(thresholds, **given),  # type: ignore[arg-type]
                )
        typer.echo(json.dumps(thresholds.__dict__, indent=2))
