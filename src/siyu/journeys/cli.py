"""`siyu journey …`: list, create (from a JSON file or a shipped template), show with step counts, edit
into a new version, start / pause / archive, run the engine once, and the staff task figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from siyu.auth import service as auth
from siyu.core.db import get_database
from siyu.core.errors import ValidationFailed
from siyu.journeys import service
from siyu.journeys.tasks import JourneyEngine
from siyu.workspaces import service as workspaces

journey_app = typer.Typer(help="SOP journeys: triggers and steps run per customer by the engine.")
WORKSPACE = typer.Option(None, "--workspace", help="Workspace slug (default: the only one).")
AS = typer.Option(None, "--as", help="Act as this member's email (default: the first owner).")


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"cannot read {path}: {exc}", where="definition file") from None
    if not isinstance(document, dict):
        raise ValidationFailed("the file holds no JSON object", where=str(path))
    return document


@journey_app.command("list")
def list_command(workspace: str | None = WORKSPACE) -> None:
    """Every journey with its status, version and trigger."""
    with get_database().reader() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        _echo(
            [
                {
                    "id": j.id,
                    "name": j.name,
                    "status": j.status,
                    "version": j.version,
                    "trigger": j.trigger_kind,
                }
                for j in service.list_journeys(session, workspace_id=found.id)
            ]
        )


@journey_app.command("templates")
def templates_command() -> None:
    """The shipped SOP templates and their definitions."""
    _echo(
        [
            {"key": t.key, "name": t.name_en, "definition": service.template_definition(t.key)}
            for t in service.TEMPLATES
        ]
    )


@journey_app.command("create")
def create_command(
    name: str = typer.Argument(..., help="The journey's name."),
    file: Path | None = typer.Option(None, "--file", help="A JSON definition (docs/journeys.md)."),
    template: str | None = typer.Option(
        None, "--template", help="welcome, post_purchase, dormant or birthday."
    ),
    coupon_template_id: int | None = typer.Option(None, "--coupon-template", help="Coupon step's template."),
    start: bool = typer.Option(False, "--start", help="Start it at once."),
    workspace: str | None = WORKSPACE,
    email: str | None = AS,
) -> None:
    """Create a journey in draft (or live with --start) from a file or a template."""
    if (file is None) == (template is None):
        raise ValidationFailed("give --file or --template", where="create", hint="siyu journey templates")
    definition = (
        _read(file)
        if file
        else service.template_definition(template or "", coupon_template_id=coupon_template_id)
    )
    with get_database().transaction() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        actor = auth.command_line_actor(session, workspace_id=found.id, email=email)
        journey = service.create_journey(
            session, actor=actor, name=name, definition=definition, template_key=template
        )
        if start:
            service.set_status(session, actor=actor, journey_id=journey.id, action="start")
        _echo({"id": journey.id, "status": journey.status, "version": journey.version})


@journey_app.command("show")
def show_command(journey_id: int, workspace: str | None = WORKSPACE) -> None:
    """The journey's steps with how many customers stand at each and passed it, and the outcomes."""
    with get_database().reader() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        figures = service.journey_figures(session, workspace_id=found.id, journey_id=journey_id)
        _echo(
            {
                "id": figures.journey.id,
                "name": figures.journey.name,
                "status": figures.journey.status,
                "version": figures.journey.version,
                "enrolled": figures.enrolled,
                "active": figures.active,
                "goal": figures.goal,
                "completed": figures.completed,
                "exited": figures.exited,
                "steps": [vars(s) for s in figures.steps],
            }
        )


@journey_app.command("edit")
def edit_command(
    journey_id: int,
    file: Path = typer.Option(..., "--file", help="The new JSON definition."),
    in_flight: str = typer.Option(..., "--in-flight", help="Customers in the journey: stay, move or exit."),
    workspace: str | None = WORKSPACE,
    email: str | None = AS,
) -> None:
    """Save a new version; say what happens to the customers in flight."""
    with get_database().transaction() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        actor = auth.command_line_actor(session, workspace_id=found.id, email=email)
        change = service.update_definition(
            session, actor=actor, journey_id=journey_id, definition=_read(file), in_flight=in_flight
        )
        _echo(vars(change))


def _status_command(action: str) -> None:
    @journey_app.command(action)
    def command(journey_id: int, workspace: str | None = WORKSPACE, email: str | None = AS) -> None:
        with get_database().transaction() as session:
            found = workspaces.workspace_for_command(session, slug=workspace)
            actor = auth.command_line_actor(session, workspace_id=found.id, email=email)
            journey = service.set_status(session, actor=actor, journey_id=journey_id, action=action)
            _echo({"id": journey.id, "status": journey.status})

    command.__doc__ = {"start": "Start a draft or paused journey.", "pause": "Pause a live journey.",
                       "archive": "Archive a journey: every customer in it exits."}[action]  # fmt: skip


for _action in ("start", "pause", "archive"):
    _status_command(_action)


@journey_app.command("run")
def run_command(workspace: str | None = WORKSPACE) -> None:
    """Run the engine once: read the outbox, the schedules and every due step, then exit."""
    database = get_database()
    with database.reader() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
    engine = JourneyEngine(database, workspace_id=found.id)
    steps = engine.run_once()
    _echo(
        {
            "events": engine.stats.events,
            "enrolled": engine.stats.enrolled,
            "steps": steps,
            "by_kind": engine.stats.by_kind,
        }
    )


@journey_app.command("tasks")
def tasks_command(workspace: str | None = WORKSPACE, email: str | None = AS) -> None:
    """Per staff member: tasks, done, open, overdue, completion rate and mean response time (30 days)."""
    with get_database().reader() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        actor = auth.command_line_actor(session, workspace_id=found.id, email=email)
        _echo([vars(f) for f in service.staff_figures(session, actor=actor)])


def register(app: typer.Typer) -> None:
    app.add_typer(journey_app, name="journey")
