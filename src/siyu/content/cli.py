"""`siyu content`: the SMS length of a text, and the tracked-link clicks of a broadcast or journey."""

from __future__ import annotations

import json

import typer

from siyu.content import service
from siyu.core.db import get_database
from siyu.workspaces import service as workspaces

content_app = typer.Typer(help="Message templates, the content library (话术库) and tracked links.")


@content_app.command("sms-length")
def sms_length_command(
    text: str = typer.Argument(..., help="The SMS text."),
    sign_name: str = typer.Option("", "--sign", help="The sign name (签名) the provider puts in 【】."),
) -> None:
    """How the SMS counts: encoding (GSM-7 or UCS-2), length, parts (160/153 or 70/67)."""
    typer.echo(json.dumps(service.sms_length(text, sign_name or None).as_dict()))


@content_app.command("clicks")
def clicks_command(
    source: str = typer.Argument(..., help="broadcast, journey, staff or api."),
    source_ref: str = typer.Argument(..., help="The broadcast's or journey's reference."),
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace slug (default: the only one)."),
) -> None:
    """Tracked links of one source: rendered, clicked (each once), customers who clicked, by URL."""
    with get_database().reader() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        counts = service.clicks(session, workspace_id=found.id, source=source, source_ref=source_ref)
    typer.echo(json.dumps(counts.model_dump(), ensure_ascii=False, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(content_app, name="content")
