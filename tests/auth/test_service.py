"""Users, roles, passwords and API tokens."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from siyu.auth import service as auth
from siyu.auth.models import ApiToken, Role
from siyu.auth.service import Permission
from siyu.core.audit import AuditEntry
from siyu.core.db import Database
from siyu.core.errors import Conflict, PermissionDenied, Unauthorized, ValidationFailed


def _email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


def test_password_login_and_refusals(db: Database, workspace_id: int) -> None:
    email = _email()
    with db.transaction() as session:
        user = auth.create_user(session, email=email.upper(), password="correct horse", display_name="Ops")
        auth.add_member(session, workspace_id=workspace_id, user_id=user.id, role=Role.OPERATOR)
        assert user.password_hash.startswith("$argon2")
    with db.transaction() as session:
        assert auth.authenticate(session, email=email, password="correct horse").id == user.id
        with pytest.raises(Unauthorized, match="wrong email or password"):
            auth.authenticate(session, email=email, password="wrong horse!")
        with pytest.raises(Unauthorized, match="wrong email or password"):
            auth.authenticate(session, email="nobody@example.com", password="correct horse")


def test_bad_user_input_is_refused(db: Database) -> None:
    with db.transaction() as session:
        with pytest.raises(ValidationFailed, match="too short"):
            auth.create_user(session, email=_email(), password="short", display_name="x")
        with pytest.raises(ValidationFailed, match="not an email"):
            auth.create_user(session, email="no-at-sign", password="long enough", display_name="x")
        email = _email()
        auth.create_user(session, email=email, password="long enough", display_name="x")
        with pytest.raises(Conflict):
            auth.create_user(session, email=email, password="long enough", display_name="y")


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (Role.OWNER, set(Permission), set()),
        (Role.OPERATOR, {Permission.READ, Permission.WRITE, Permission.MERGE}, {Permission.ERASE}),
        (Role.ANALYST, {Permission.READ, Permission.EXPORT}, {Permission.WRITE, Permission.MERGE}),
        (Role.STAFF, {Permission.READ}, {Permission.WRITE, Permission.EXPORT, Permission.MANAGE}),
    ],
)
def test_role_permissions(role: Role, allowed: set[Permission], refused: set[Permission]) -> None:
    actor = auth.Actor(user_id=1, workspace_id=1, role=role)
    assert all(actor.can(p) for p in allowed)
    for permission in refused:
        with pytest.raises(PermissionDenied):
            actor.require(permission)
    assert actor.sees_masked_phones == (role == Role.STAFF)


def test_api_token_is_hashed_scoped_and_revocable(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        user = auth.create_user(session, email=_email(), password="long enough", display_name="Bot")
        auth.add_member(session, workspace_id=workspace_id, user_id=user.id, role=Role.ANALYST)
        token, row = auth.create_api_token(session, workspace_id=workspace_id, user_id=user.id, name="ci")
    with db.transaction() as session:
        stored = session.scalar(select(ApiToken).where(ApiToken.id == row.id))
        assert stored is not None and token not in (stored.token_hash, stored.prefix)
        actor = auth.actor_for_token(session, token=token)
        assert (actor.workspace_id, actor.role, actor.via) == (workspace_id, Role.ANALYST, "token")
        assert [t.id for t in auth.list_api_tokens(session, workspace_id=workspace_id)] == [row.id]
        auth.revoke_api_token(session, actor=actor, token_id=row.id)
    with db.transaction() as session, pytest.raises(Unauthorized):
        auth.actor_for_token(session, token=token)
    with db.reader() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.workspace_id == workspace_id).order_by(AuditEntry.id)
        ).all()
    assert actions == ["api_token.created", "api_token.revoked"]


def test_a_non_member_gets_no_actor(db: Database, workspace_id: int) -> None:
    with db.transaction() as session:
        user = auth.create_user(session, email=_email(), password="long enough", display_name="Out")
        with pytest.raises(PermissionDenied):
            auth.actor_for(session, user_id=user.id, workspace_id=workspace_id)
        with pytest.raises(PermissionDenied):
            auth.create_api_token(session, workspace_id=workspace_id, user_id=user.id, name="x")
