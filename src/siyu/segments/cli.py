"""`siyu segment create|count|explain|export|list|delete|process|sweep|reconcile|status|rule-tag`: segments and
their live membership from the command line.

A RULE is the text form (`'tag("VIP") and orders(within="30d").count >= 2'`) or canonical JSON (`{…}`).
Commands act as the workspace's first owner unless `--as EMAIL` names another member.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from siyu.auth import service as auth
from siyu.auth.service import Actor
from siyu.core.db import get_database
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import parse_instant
from siyu.segments import export, service
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


def _workspace_id(session: Any, workspace: str | None) -> int:
    return workspaces.workspace_for_command(session, slug=workspace).id


def _changes(result: Any) -> str:
    return f"{result.entered} entered, {result.left} left"


@segment_app.command("process")
def process(
    workspace: str | None = WORKSPACE,
    limit: int = typer.Option(1000, "--limit", help="Domain events per transaction."),
    now: str | None = NOW,
) -> None:
    """Bring membership current with the domain events not yet handled, LIMIT per transaction, until
    none is left (what the scheduler does between runs)."""
    db = get_database()
    events = entered = left = 0
    while True:
        with db.transaction() as session:
            result = service.process_pending(
                session, workspace_id=_workspace_id(session, workspace), limit=limit, now=_now(now)
            )
        events, entered, left = events + result.events, entered + result.entered, left + result.left
        for segment_id, error in result.errors.items():
            typer.secho(f"segment {segment_id} not evaluated: {error}", fg=typer.colors.RED, err=True)
        if not result.remaining:
            break
    typer.echo(f"{events} events: {entered} entered, {left} left")


@segment_app.command("sweep")
def sweep_(workspace: str | None = WORKSPACE, now: str | None = NOW) -> None:
    """Evaluate in full the segments whose rules change with time alone (windows, ago(), scores)."""
    with get_database().transaction() as session:
        result = service.sweep(session, workspace_id=_workspace_id(session, workspace), now=_now(now))
    for segment_id, error in result.errors.items():
        typer.secho(f"segment {segment_id} not evaluated: {error}", fg=typer.colors.RED, err=True)
    typer.echo(f"{result.segments} segments swept: {_changes(result)}")


@segment_app.command("reconcile")
def reconcile_(
    workspace: str | None = WORKSPACE,
    repair: bool = typer.Option(False, "--repair", help="Bring drifted membership to the full evaluation."),
    now: str | None = NOW,
) -> None:
    """Compare every segment's kept membership with a full evaluation and print the drift; exits 1 when
    drift was found and not repaired."""
    with get_database().transaction() as session:
        found = service.reconcile(
            session, workspace_id=_workspace_id(session, workspace), repair=repair, now=_now(now)
        )
    drifted = False
    for drift in found:
        if drift.error:
            typer.secho(f"{drift.segment_id}\t{drift.name}\terror: {drift.error}", fg=typer.colors.RED)
            continue
        note = " (repaired)" if drift.repaired else ""
        typer.echo(f"{drift.segment_id}\t{drift.name}\tmissing {drift.missing}\textra {drift.extra}{note}")
        drifted = drifted or bool((drift.missing or drift.extra) and not drift.repaired)
    if drifted:
        raise typer.Exit(1)


@segment_app.command("status")
def status(workspace: str | None = WORKSPACE, as_: str | None = AS) -> None:
    """Print every segment's members, lag, drift and state."""
    with get_database().reader() as session:
        actor = _actor(session, workspace, as_)
        for s in service.segment_statuses(session, actor=actor):
            drift = "-" if s.reconciled_at is None else f"{s.drift_missing}/{s.drift_extra}"
            typer.echo(
                f"{s.id}\t{s.name}\t{s.members} members\tlag {s.lag_seconds:.0f}s\tdrift {drift}\t{s.state}"
            )


@segment_app.command("rule-tag")
def rule_tag(
    name: str = typer.Argument(..., help="The segment."),
    tag_id: int | None = typer.Option(None, "--tag-id", help="The tag members carry; omit to stop."),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
) -> None:
    """Make segment NAME give a tag (source rule) to its members and take it back when they leave."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        segment = service.get_segment_by_name(session, workspace_id=actor.workspace_id, name=name)
        service.set_rule_tag(session, actor=actor, segment_id=segment.id, tag_id=tag_id)
    typer.echo(f"segment {segment.id} {name!r}: rule tag {tag_id if tag_id is not None else 'none'}")


@segment_app.command("export")
def export_(
    segment: str = typer.Argument(..., help="The segment's name (or @NAME)."),
    file_format: str = typer.Option("csv", "--format", help="csv or xlsx."),
    out: Path = typer.Option(..., "--out", help="The file to write."),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
) -> None:
    """Write the segment's current members to a CSV or Excel file (audited; phones masked for staff)."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        found = service.get_segment_by_name(
            session, workspace_id=actor.workspace_id, name=segment.removeprefix("@")
        )
        status = service.record_export(session, actor=actor, segment_id=found.id, file_format=file_format)
        batches = service.member_batches(session, actor=actor, segment_id=found.id)
        with out.open("wb") as handle:
            for chunk in export.chunks(file_format, batches, title=status.name):
                handle.write(chunk)
    typer.echo(f"segment {found.id} {found.name!r}: {status.members} members written to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(segment_app, name="segment")
