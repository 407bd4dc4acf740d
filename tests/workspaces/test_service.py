"""Workspaces: slugs are validated and unique."""

from __future__ import annotations

import uuid

import pytest

from siyu.core.db import Database
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.workspaces import service as workspaces


def test_create_and_find(db: Database) -> None:
    slug = f"brand-{uuid.uuid4().hex[:6]}"
    with db.transaction() as session:
        ws = workspaces.create_workspace(session, slug=slug, name="Brand")
        assert len(ws.webhook_secret) >= 32
    with db.transaction() as session:
        assert workspaces.get_workspace_by_slug(session, slug=slug).id == ws.id
        with pytest.raises(Conflict):
            workspaces.create_workspace(session, slug=slug, name="Again")


@pytest.mark.parametrize("slug", ["", "A", "Upper", "has space", "-lead", "x" * 80])
def test_bad_slugs_are_refused(db: Database, slug: str) -> None:
    with db.transaction() as session, pytest.raises(ValidationFailed, match="slug"):
        workspaces.create_workspace(session, slug=slug, name="x")


def test_unknown_slug(db: Database) -> None:
    with db.reader() as session, pytest.raises(NotFound):
        workspaces.get_workspace_by_slug(session, slug="does-not-exist")
