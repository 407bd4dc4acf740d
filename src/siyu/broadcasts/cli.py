"""`siyu broadcast create|start|pause|resume|cancel|status`: broadcasts (群发) from the command line.

Commands act as the workspace's first owner unless `--as EMAIL` names another member. A started
broadcast is decided and sent by `siyu worker` (or the worker inside `siyu serve`); `start --wait`
decides the whole audience before it returns.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import typer

from siyu.auth import service as auth
from siyu.auth.service import Actor
from siyu.broadcasts import service, tasks
from siyu.core.db import get_database
from siyu.core.errors import ValidationFailed
from siyu.core.timeutil import parse_instant
from siyu.segments import service as segments
from siyu.workspaces import service as workspaces

broadcast_app = typer.Typer(
    help="Broadcasts (群发): create, start, pause, resume, cancel.", no_args_is_help=True
)

WORKSPACE = typer.Option(None, "--workspace", help="Workspace slug (default: the only one).")
AS = typer.Option(None, "--as", help="Act as this member (email); default: the workspace owner.")


def _actor(session: Any, workspace: str | None, email: str | None) -> Actor:
    workspace_id = workspaces.workspace_for_command(session, slug=workspace).id
    return auth.command_line_actor(session, workspace_id=workspace_id, email=email)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"{where} is not JSON: {exc.msg}", where=f"{where}, column {exc.colno}"
        ) from None


def _show(broadcast: Any) -> None:
    typer.echo(
        json.dumps(
            {"id": broadcast.id, "name": broadcast.name, "status": broadcast.status,
             "audience": broadcast.audience_size, "decided": broadcast.decided_count},
            ensure_ascii=False,
        )
    )  # fmt: skip


@broadcast_app.command("create")
def create(
    name: str = typer.Argument(..., help="The broadcast's name."),
    content: str = typer.Option(..., "--content", help='Content per channel (JSON): {"sms": {"text": "…"}}.'),
    channels: str = typer.Option("wecom,sms", "--channels", help="Channels in order of preference."),
    segment: str | None = typer.Option(None, "--segment", help="Audience: this saved segment (name)."),
    customers: str | None = typer.Option(
        None, "--customers", help="Audience: customer ids, comma separated."
    ),
    phones: str | None = typer.Option(None, "--phones", help="Audience: phone numbers, comma separated."),
    purpose: str = typer.Option("marketing", "--purpose", help="marketing or transactional."),
    variants: str | None = typer.Option(
        None, "--variants", help='A/B variants (JSON): {"a": {"weight": 1, "content": {…}}, "b": …}.'
    ),
    holdout: float = typer.Option(0.0, "--holdout", help="Share of the audience that gets no message."),
    send_at: str | None = typer.Option(None, "--send-at", help="Scheduled start (ISO 8601 with offset)."),
    window: int = typer.Option(7, "--window", help="Conversion window in days."),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
) -> None:
    """Create a draft broadcast and print it."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        segment_id = (
            segments.get_segment_by_name(session, workspace_id=actor.workspace_id, name=segment).id
            if segment
            else None
        )
        broadcast = service.create_broadcast(
            session,
            actor=actor,
            name=name,
            purpose=purpose,
            channel_preference=[c.strip() for c in channels.split(",") if c.strip()],
            content=_json(content, "--content"),
            segment_id=segment_id,
            customer_ids=[int(c) for c in customers.split(",") if c.strip()] if customers else None,
            identity_kind="phone" if phones else None,
            identity_values=[p.strip() for p in phones.split(",") if p.strip()] if phones else None,
            variants=_json(variants, "--variants") if variants else None,
            holdout_share=holdout,
            send_at=parse_instant(send_at, where="--send-at") if send_at else None,
            conversion_window_days=window,
        )
        _show(broadcast)


@broadcast_app.command("start")
def start(
    broadcast_id: int = typer.Argument(...),
    wait: bool = typer.Option(False, "--wait", help="Decide the whole audience before returning."),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
) -> None:
    """Start a draft now (or schedule it, when its send_at is in the future)."""
    database = get_database()
    with database.transaction() as session:
        broadcast = service.start_broadcast(
            session, actor=_actor(session, workspace, as_), broadcast_id=broadcast_id
        )
        _show(broadcast)
    if wait:
        typer.echo(f"decided {tasks.run_until_decided(database)}")


def _verb(name: str, verb: Any, help_text: str) -> None:
    def command(
        broadcast_id: int = typer.Argument(...), workspace: str | None = WORKSPACE, as_: str | None = AS
    ) -> None:
        with get_database().transaction() as session:
            _show(verb(session, actor=_actor(session, workspace, as_), broadcast_id=broadcast_id))

    command.__doc__ = help_text
    broadcast_app.command(name)(command)


_verb("pause", service.pause_broadcast, "Pause: nothing more is decided or leaves until resumed.")
_verb("resume", service.resume_broadcast, "Resume a paused broadcast where it stopped.")
_verb("cancel", service.cancel_broadcast, "Cancel: what has not left never will.")


@broadcast_app.command("status")
def status(
    broadcast_id: int | None = typer.Argument(None, help="One broadcast (default: list them all)."),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
) -> None:
    """Print a broadcast's counts by outcome (they add up to its audience), or list the broadcasts."""
    with get_database().reader() as session:
        actor = _actor(session, workspace, as_)
        if broadcast_id is None:
            for broadcast in service.list_broadcasts(session, actor=actor):
                _show(broadcast)
            return
        found = service.progress(session, actor=actor, broadcast_id=broadcast_id)
    typer.echo(json.dumps(dataclasses.asdict(found), ensure_ascii=False, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(broadcast_app, name="broadcast")
