"""`siyu tag list|create-group|create|rename|rename-group|delete|delete-group|import`: tag groups and tags
from the command line, and tagging (or untagging) the customers a CSV list names.

Commands act as the workspace's first owner unless `--as EMAIL` names another member.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from siyu.auth import service as auth
from siyu.auth.service import Actor
from siyu.core.db import get_database
from siyu.segments import service as segments
from siyu.tags import service
from siyu.workspaces import service as workspaces

tag_app = typer.Typer(help="Tags: groups, tags, counts and bulk tagging from a list.", no_args_is_help=True)

WORKSPACE = typer.Option(None, "--workspace", help="Workspace slug (default: the only one).")
AS = typer.Option(None, "--as", help="Act as this member (email); default: the workspace owner.")


def _actor(session: Any, workspace: str | None, email: str | None) -> Actor:
    workspace_id = workspaces.workspace_for_command(session, slug=workspace).id
    return auth.command_line_actor(session, workspace_id=workspace_id, email=email)


@tag_app.command("list")
def list_(workspace: str | None = WORKSPACE, as_: str | None = AS) -> None:
    """Print every tag with its id, group, customers and customers per source."""
    with get_database().reader() as session:
        actor = _actor(session, workspace, as_)
        counts = service.tag_counts(session, actor=actor)
        for group in service.list_groups(session, workspace_id=actor.workspace_id):
            typer.echo(f"group {group.id}\t{group.name}")
            for tag in group.tags:
                count = counts.get(tag.id)
                sources = ", ".join(f"{k} {v}" for k, v in sorted(count.by_source.items())) if count else ""
                typer.echo(f"  {tag.id}\t{tag.name}\t{count.customers if count else 0}\t{sources}")


@tag_app.command("create-group")
def create_group(name: str, workspace: str | None = WORKSPACE, as_: str | None = AS) -> None:
    """Create a tag group."""
    with get_database().transaction() as session:
        group = service.create_group(session, actor=_actor(session, workspace, as_), name=name)
    typer.echo(f"group {group.id} {group.name!r}")


@tag_app.command("create")
def create(group_id: int, name: str, workspace: str | None = WORKSPACE, as_: str | None = AS) -> None:
    """Create tag NAME in group GROUP_ID."""
    with get_database().transaction() as session:
        tag = service.create_tag(session, actor=_actor(session, workspace, as_), group_id=group_id, name=name)
    typer.echo(f"tag {tag.id} {tag.name!r}")


@tag_app.command("rename")
def rename(tag_id: int, name: str, workspace: str | None = WORKSPACE, as_: str | None = AS) -> None:
    """Rename a tag (refused while a segment's rule names it)."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=[tag_id])
        tag = service.rename_tag(session, actor=actor, tag_id=tag_id, name=name, named_by=named_by)
    typer.echo(f"tag {tag.id} is now {tag.name!r}")


@tag_app.command("rename-group")
def rename_group(group_id: int, name: str, workspace: str | None = WORKSPACE, as_: str | None = AS) -> None:
    """Rename a tag group (refused while a segment's rule names one of its tags as group/name)."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        ids = service.tag_ids_of_group(session, workspace_id=actor.workspace_id, group_id=group_id)
        named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=ids)
        group = service.rename_group(session, actor=actor, group_id=group_id, name=name, named_by=named_by)
    typer.echo(f"group {group.id} is now {group.name!r}")


CONFIRM = typer.Option(
    None, "--confirm", help="The number of customers carrying it, as printed without --confirm."
)


@tag_app.command("delete")
def delete(
    tag_id: int, confirm: int | None = CONFIRM, workspace: str | None = WORKSPACE, as_: str | None = AS
) -> None:
    """Delete a tag: without --confirm, print how many customers would lose it; with --confirm N, delete
    it if N customers carry it."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=[tag_id])
        if confirm is None:
            count = service.carriers_count(session, actor=actor, tag_id=tag_id)
            typer.echo(f"{count} customers carry tag {tag_id}; run again with --confirm {count} to delete it")
            if named_by:
                typer.echo(f"named by segments: {', '.join(named_by)} (change them first)")
            return
        removed = service.delete_tag(
            session, actor=actor, tag_id=tag_id, expected_customers=confirm, named_by=named_by
        )
    typer.echo(f"tag {tag_id} deleted; {removed} customers lost it")


@tag_app.command("delete-group")
def delete_group(
    group_id: int, confirm: int | None = CONFIRM, workspace: str | None = WORKSPACE, as_: str | None = AS
) -> None:
    """Delete a tag group and its tags, confirmed as for `delete`."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        ids = service.tag_ids_of_group(session, workspace_id=actor.workspace_id, group_id=group_id)
        named_by = segments.tag_references(session, workspace_id=actor.workspace_id, tag_ids=ids)
        if confirm is None:
            count = service.carriers_count(session, actor=actor, group_id=group_id)
            typer.echo(f"{count} customers carry its tags; run again with --confirm {count} to delete it")
            return
        removed = service.delete_group(
            session, actor=actor, group_id=group_id, expected_customers=confirm, named_by=named_by
        )
    typer.echo(f"group {group_id} deleted; {removed} customers lost its tags")


@tag_app.command("import")
def import_list(
    tag_id: int,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV: a header, one value a line."),
    kind: str = typer.Option("phone", "--kind", help="phone, wecom_external_userid, shop_member_id…"),
    remove: bool = typer.Option(False, "--remove", help="Take the tag off instead."),
    workspace: str | None = WORKSPACE,
    as_: str | None = AS,
) -> None:
    """Tag (or untag) the customers FILE names; prints each row that was not applied."""
    with get_database().transaction() as session:
        actor = _actor(session, workspace, as_)
        outcome = service.tag_customers_by_list(
            session,
            actor=actor,
            tag_id=tag_id,
            kind=kind,
            content=file.read_bytes(),
            filename=file.name,
            remove=remove,
        )
    for reject in outcome.rejects:
        typer.secho(f"row {reject.row}\t{reject.value}\t{reject.reason}", fg=typer.colors.YELLOW, err=True)
    typer.echo(
        f"{outcome.result.changed} changed, {outcome.result.unchanged} unchanged, {len(outcome.rejects)} rejected"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(tag_app, name="tag")
