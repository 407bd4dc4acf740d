"""Workspace verbs: create, look up."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.workspaces.models import Workspace

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def create_workspace(
    session: Session, *, slug: str, name: str, timezone: str = "Asia/Shanghai", currency: str = "CNY"
) -> Workspace:
    """Create a workspace (a brand). Slugs are lowercase letters, digits and dashes."""
    if not _SLUG.match(slug):
        raise ValidationFailed(
            f"workspace slug {slug!r} is not valid",
            where="slug",
            hint="use 2–63 lowercase letters, digits or dashes, starting with a letter or digit",
        )
    if session.scalar(select(Workspace.id).where(Workspace.slug == slug)) is not None:
        raise Conflict(f"workspace {slug!r} already exists", where="slug", hint="choose another slug")
    workspace = Workspace(
        slug=slug,
        name=name,
        timezone=timezone,
        currency=currency,
        identity_denylist=[],
        webhook_secret=secrets.token_urlsafe(32),
        settings={},
    )
    session.add(workspace)
    session.flush()
    return workspace


def get_workspace(session: Session, *, workspace_id: int) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {workspace_id} does not exist")
    return workspace


def get_workspace_by_slug(session: Session, *, slug: str) -> Workspace:
    workspace = session.scalar(select(Workspace).where(Workspace.slug == slug))
    if workspace is None:
        raise NotFound(f"workspace {slug!r} does not exist", where="slug")
    return workspace


def list_workspaces(session: Session) -> list[Workspace]:
    return list(session.scalars(select(Workspace).order_by(Workspace.id)))


def workspace_for_command(session: Session, *, slug: str | None) -> Workspace:
    """The workspace a command line names with `--workspace`, or the only one there is; a clear error
    when there is none or the choice is ambiguous."""
    if slug:
        return get_workspace_by_slug(session, slug=slug)
    found = list_workspaces(session)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValidationFailed("there is no workspace yet", hint="create one first (or run `siyu demo`)")
    raise ValidationFailed(
        f"there are {len(found)} workspaces: say which one",
        where="--workspace",
        hint="use --workspace " + " | ".join(w.slug for w in found[:10]),
    )
