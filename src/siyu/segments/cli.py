"""`siyu segment create|count|explain|list|delete`: segments from the command line.

A RULE is the text form (`'tag("VIP") and orders(within="30d").count >= 2'`) or canonical JSON (`{…}`).
Commands act as the workspace's first owner unless `--as EMAIL` names another member.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer

from siyu.auth import service as auth
from siyu.auth.service import Actor
from siyu.core.db import get_database
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import parse_instant
from siyu.segments import service
from siyu.workspaces import service as workspaces

segment_app = typer.Typer(help="Segments: count, explain and save customer rules.", no_args_is_help=True)

WORKSPACE = typer.Option(None, "--workspace", help="Workspace slug (default: the only one).")
AS = typer.Option(None, "--as", help="Act as this member (email); default: the workspace owner.")
NOW = typer.Option(None, "--now", help="Evaluate as of this instant (ISO 8601 with offset); default: now.")


def _actor(session: Any, workspace: str | None, email: str | None) -> Actor:
    workspace_id = workspaces.workspace_for_command(session, slug=workspace).id
    return auth.command_line_actor(session, workspace_id=workspace_id, email=email)


def _source(session: Any, actor: Actor, rule: str) -> str | dict[str, Any]:
    """RULE as given (text or JSON), or the saved segment's rule for @NAME."""
    if rule.startswith("@"):
        return service.get_segment_by_name(session, workspace_id=actor.workspace_id, name=rule[1:]).rule
    return _rule(rule)


def _rule(text: str) -> str | dict[str, Any]:
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"the rule is not JSON: {exc.msg}", where=f"column {exc.colno}") from None
        return dict(document)
    return text


def _now(text: str | None) -> datetime | None:
    return parse_instant(text, where="--now") if text is not None else None


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)


@segment_app.command("count")
def count(
    rule: str = typer.Argument(..., help="The rule (text or JSON), or @NAME for a saved segment."),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
    now: str | None = NOW,
) -> None:
    """Print how many customers RULE matches."""
    with get_database().reader() as session:
        actor = _actor(session, workspace, as_)
        source = _source(session, actor, rule)
        counted = service.count_segment_rule(session, actor=actor, rule=source, now=_now(now))
    _warn(counted.warnings)
    typer.echo(counted.count)


@segment_app.command("explain")
def explain(
    rule: str = typer.Argument(..., help="The rule (text or JSON), or @NAME for a saved segment."),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
    now: str | None = NOW,
) -> None:
    """Print RULE in both forms and the SQL it runs as on this database."""
    with get_database().reader() as session:
        actor = _actor(session, workspace, as_)
        source = _source(session, actor, rule)
        explained = service.explain(session, actor=actor, rule=source, now=_now(now))
    _warn(explained.warnings)
    typer.echo(f"-- rule: {explained.text}")
    typer.echo(f"-- json: {json.dumps(explained.rule, ensure_ascii=False)}")
    typer.echo(f"-- {explained.dialect}, now = {explained.now.isoformat()}")
    typer.echo(explained.sql)


@segment_app.command("create")
def create(
    name: str = typer.Argument(..., help="The segment's name, unique in the workspace."),
    rule: str = typer.Argument(..., help="The rule (text or JSON)."),
    accept_warnings: bool = typer.Option(
        False, "--accept-warnings", help="Save even a rule that matches everyone or no one."
    ),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
) -> None:
    """Save RULE as segment NAME and print its size."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        segment = service.create_segment(
            session, actor=actor, name=name, rule=_rule(rule), accept_warnings=accept_warnings
        )
        counted = service.count_segment_rule(session, actor=actor, rule=segment.rule)
    typer.echo(f"segment {segment.id} {segment.name!r}: {segment.rule_text} — {counted.count} customers")


@segment_app.command("list")
def list_(workspace: str | None = WORKSPACE, as_: str | None = AS) -> None:
    """Print the workspace's segments."""
    with get_database().reader() as session:
        actor = _actor(session, workspace, as_)
        for segment in service.list_segments(session, workspace_id=actor.workspace_id):
            typer.echo(f"{segment.id}\t{segment.name}\t{segment.rule_text}")


@segment_app.command("delete")
def delete(name: str = typer.Argument(...), workspace: str | None = WORKSPACE, as_: str | None = AS) -> None:
    """Delete segment NAME (kept, marked deleted: rules naming it then say so)."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        segment = service.get_segment_by_name(session, workspace_id=actor.workspace_id, name=name)
        service.delete_segment(session, actor=actor, segment_id=segment.id)
    typer.echo(f"segment {segment.id} {name!r} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(segment_app, name="segment")
