"""`siyu wecom`: sync customer groups and corp tags from WeCom, and run a round of background work
(scheduled moments, mass-message and moment results), and fetch the groups' daily figures (群聊数据统计)."""

from __future__ import annotations

import json
from datetime import timedelta

import typer

from siyu.auth import service as auth
from siyu.core.db import get_database
from siyu.core.timeutil import parse_instant
from siyu.wecom import service, tasks
from siyu.workspaces import service as workspaces

wecom_app = typer.Typer(help="WeCom (企业微信): sync and background work.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(wecom_app, name="wecom")


@wecom_app.command("sync")
def sync_command(
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace slug (default: the only one)."),
    acting_as: str | None = typer.Option(
        None, "--as", help="Act as this member (email); default: the owner."
    ),
) -> None:
    """Customer groups (groupchat/list + get) and corp tags (as siyu tags) from WeCom."""
    with get_database().transaction() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
        actor = auth.command_line_actor(session, workspace_id=found.id, email=acting_as)
        groups = service.sync_groups(session, workspace_id=found.id)
        tags = service.sync_corp_tags(session, actor=actor)
    typer.echo(
        json.dumps(
            {
                "groups": {"seen": groups.seen, "created": groups.created, "updated": groups.updated},
                "corp_tags": {"groups": tags.groups, "tags": tags.tags, "created": tags.created},
            },
            indent=2,
        )
    )


@wecom_app.command("poll")
def poll_command(
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace slug (default: the only one)."),
    now: str | None = typer.Option(None, "--now", help="Run as at this time (ISO 8601 with offset)."),
) -> None:
    """Submit due moments and read the results of open mass messages and moments."""
    moment = parse_instant(now, where="--now") if now is not None else None
    database = get_database()
    with database.reader() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
    result = tasks.run_round(database, workspace_id=found.id, now=moment)
    typer.echo(
        json.dumps(
            {
                "follows_relinked": result.follows_relinked,
                "moments_submitted": result.moments_submitted,
                "messages_polled": result.messages_polled,
                "moments_polled": result.moments_polled,
                "failures": [{"item": item, "reason": reason} for item, reason in result.failures],
            },
            ensure_ascii=False,
            indent=2,
        )
    )


@wecom_app.command("group-stats")
def group_stats_command(
    days: int = typer.Option(
        1, "--days", min=1, max=180, help="Days to fetch, ending yesterday (WeCom keeps 180)."
    ),
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace slug (default: the only one)."),
) -> None:
    """The customer groups' daily figures (群聊数据统计) of the last N days, by owner, from WeCom; a day
    fetched again is overwritten."""
    database = get_database()
    with database.reader() as session:
        found = workspaces.workspace_for_command(session, slug=workspace)
    yesterday = service.wecom_yesterday()
    wanted = service.day_range(yesterday - timedelta(days=days - 1), yesterday)
    result = tasks.fetch_group_stat_days(database, workspace_id=found.id, days=wanted)
    typer.echo(
        json.dumps(
            {
                "start": wanted[0].isoformat(),
                "end": yesterday.isoformat(),
                "owners": result.owners,
                "rows": result.rows,
                "calls": result.calls,
            },
            indent=2,
        )
    )
