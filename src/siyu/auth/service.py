"""Auth verbs: users, memberships, password check, API tokens, and what each role may do."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from siyu.auth.models import ApiToken, Membership, Role, User
from siyu.core import audit
from siyu.core.config import get_settings
from siyu.core.errors import Conflict, NotFound, PermissionDenied, Unauthorized, ValidationFailed
from siyu.core.timeutil import utcnow

_hasher = PasswordHasher()
TOKEN_PREFIX = "sy_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Permission(StrEnum):
    READ = "read"  # see customers, orders, events, reports
    WRITE = "write"  # import, edit customers, record consent
    MERGE = "merge"  # merge / unmerge identities, resolve reviews
    EXPORT = "export"  # export data about people (PIPL export, lists)
    ERASE = "erase"  # erase a person (PIPL)
    MANAGE = "manage"  # members, tokens, channels and costs, workspace settings
    CONTACT = "contact"  # write to one customer 1:1 (staff: to the customers assigned to them)


_ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {Permission.READ, Permission.WRITE, Permission.MERGE, Permission.EXPORT, Permission.CONTACT}
    ),
    Role.ANALYST: frozenset({Permission.READ, Permission.EXPORT}),
    Role.STAFF: frozenset({Permission.READ, Permission.CONTACT}),
}


@dataclass(frozen=True)
class Actor:
    """Who is acting, in which workspace, with which role (from a session cookie or an API token)."""

    user_id: int
    workspace_id: int
    role: Role
    display_name: str = ""
    via: str = "session"  # session | token | cli

    def can(self, permission: Permission) -> bool:
        return permission in _ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(
                f"the {self.role.value} role may not {permission.value}",
                hint="ask an owner or admin of this workspace for a role that may",
            )

    @property
    def sees_only_own_customers(self) -> bool:
        """Staff see only the customers assigned to them."""
        return self.role == Role.STAFF

    @property
    def sees_masked_phones(self) -> bool:
        return self.role == Role.STAFF


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(session: Session, *, email: str, password: str, display_name: str) -> User:
    """Create a login. Emails are case-insensitive; passwords need 8 characters at least."""
    email = email.strip().lower()
    if "@" not in email:
        raise ValidationFailed(f"{email!r} is not an email address", where="email")
    if len(password) < 8:
        raise ValidationFailed("password too short", where="password", hint="use at least 8 characters")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with email {email} exists already", where="email")
    user = User(email=email, display_name=display_name, password_hash=hash_password(password), is_active=True)
    session.add(user)
    session.flush()
    return user


def add_member(
    session: Session, *, workspace_id: int, user_id: int, role: Role, wecom_userid: str | None = None
) -> Membership:
    """Give a user a role in a workspace."""
    membership = Membership(
        workspace_id=workspace_id, user_id=user_id, role=Role(role).value, wecom_userid=wecom_userid
    )
    session.add(membership)
    session.flush()
    return membership


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The user with these credentials, or Unauthorized (the same message whatever was wrong)."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    failure = Unauthorized("wrong email or password", hint="check both and try again")
    if user is None or not user.is_active:
        _hasher.hash(password)  # spend the same time as a real check: no user enumeration by timing
        raise failure
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def memberships_of(session: Session, *, user_id: int) -> list[Membership]:
    return list(
        session.scalars(
            select(Membership)
            .where(Membership.user_id == user_id, Membership.is_active.is_(True))
            .order_by(Membership.workspace_id)
        )
    )


def actor_for(session: Session, *, user_id: int, workspace_id: int, via: str = "session") -> Actor:
    """The actor for a user in a workspace, or PermissionDenied if they are not a member there."""
    row = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.user_id == user_id,
            Membership.workspace_id == workspace_id,
            Membership.is_active.is_(True),
            User.is_active.is_(True),
        )
    ).first()
    if row is None:
        raise PermissionDenied("not a member of this workspace")
    membership, user = row
    return Actor(
        user_id=user.id,
        workspace_id=workspace_id,
        role=Role(membership.role),
        display_name=user.display_name,
        via=via,
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, *, workspace_id: int, user_id: int, name: str) -> tuple[str, ApiToken]:
    """A new API token; the plaintext is returned once and only its SHA-256 is stored (audited)."""
    actor_for(session, user_id=user_id, workspace_id=workspace_id)
    secret = secrets.token_urlsafe(32)
    token = f"{TOKEN_PREFIX}{secret}"
    row = ApiToken(
        workspace_id=workspace_id,
        user_id=user_id,
        name=name,
        prefix=token[:10],
        token_hash=_token_hash(token),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=user_id,
        action="api_token.created",
        target_type="api_token",
        target_id=row.id,
        detail={"name": name, "prefix": row.prefix},
    )
    return token, row


def list_api_tokens(session: Session, *, workspace_id: int, user_id: int | None = None) -> list[ApiToken]:
    """The workspace's tokens (only `user_id`'s when given), oldest first."""
    query = select(ApiToken).where(ApiToken.workspace_id == workspace_id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(session.scalars(query.order_by(ApiToken.id)))


# token hash -> (monotonic expiry, actor, token id); see Settings.token_cache_seconds
_token_cache: dict[str, tuple[float, Actor, int]] = {}


def cached_token_actor(token: str) -> Actor | None:
    """The actor of a token authenticated within `token_cache_seconds`, from memory; else None."""
    cached = _token_cache.get(_token_hash(token))
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return None


def authenticate_token(session: Session, *, token: str) -> tuple[Actor, int | None]:
    """The actor a bearer token stands for, and the token's id when its last use is due to be recorded.

    Reads only: recording the use is `record_token_use`, for the caller to run in a short transaction
    of its own, so that read-only requests stay read-only (a write on every request would serialise
    all API traffic, and on SQLite turn concurrent readers into competing writers). The answer is kept
    in memory for `token_cache_seconds`: two queries less on every API call.
    """
    digest = _token_hash(token)
    ttl = get_settings().token_cache_seconds
    cached = _token_cache.get(digest)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1], None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or row.revoked_at is not None:
        raise Unauthorized(
            "invalid or revoked API token", hint="create a new token in the workspace settings"
        )
    actor = actor_for(session, user_id=row.user_id, workspace_id=row.workspace_id, via="token")
    if ttl > 0:
        _token_cache[digest] = (time.monotonic() + ttl, actor, row.id)
    due = row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION
    return actor, row.id if due else None


def actor_for_token(session: Session, *, token: str) -> Actor:
    """The actor a bearer token stands for, or Unauthorized."""
    return authenticate_token(session, token=token)[0]


def record_token_use(session: Session, *, token_id: int) -> None:
    """Note that a token was used now (kept to the minute: older values only are overwritten)."""
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


def revoke_api_token(session: Session, *, actor: Actor, token_id: int) -> None:
    """Revoke a token: one's own, or any of the workspace's for those who may manage it (audited)."""
    row = session.get(ApiToken, token_id)
    mine_or_managed = row is not None and (row.user_id == actor.user_id or actor.can(Permission.MANAGE))
    if row is None or row.workspace_id != actor.workspace_id or not mine_or_managed:
        raise NotFound(f"API token {token_id} does not exist in this workspace", where="token_id")
    row.revoked_at = utcnow()
    _token_cache.pop(row.token_hash, None)
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="api_token.revoked",
        target_type="api_token",
        target_id=token_id,
        detail={"name": row.name, "prefix": row.prefix},
    )


def member_ids_by_email(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Lower-cased email → user id of every active member of the workspace (for owner columns in imports)."""
    rows = session.execute(
        select(User.email, User.id)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id, Membership.is_active.is_(True))
    )
    return {email.lower(): user_id for email, user_id in rows}


def system_actor(*, workspace_id: int, display_name: str) -> Actor:
    """The actor of work no person started (the worker's scheduled jobs): an admin of the workspace
    with no user (audit rows name no one)."""
    return Actor(
        user_id=0, workspace_id=workspace_id, role=Role.ADMIN, display_name=display_name, via="system"
    )


def command_line_actor(session: Session, *, workspace_id: int, email: str | None = None) -> Actor:
    """Whom a CLI command acts as: the member with `email`, or else the workspace's first owner."""
    query = (
        select(Membership.user_id)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.workspace_id == workspace_id, Membership.is_active.is_(True), User.is_active.is_(True)
        )
    )
    if email:
        query = query.where(User.email == email.strip().lower())
    else:
        query = query.where(Membership.role == Role.OWNER.value).order_by(Membership.id)
    user_id = session.scalar(query.limit(1))
    if user_id is None:
        raise NotFound(
            f"{email} is not an active member of this workspace" if email else "this workspace has no owner",
            where="--as",
            hint="name a member with --as EMAIL",
        )
    return actor_for(session, user_id=user_id, workspace_id=workspace_id, via="cli")


@dataclass(frozen=True)
class MemberInfo:
    """An active member of a workspace as other domains show them (staff pickers, attribution)."""

    user_id: int
    display_name: str
    email: str
    role: Role
    wecom_userid: str | None


def list_members(session: Session, *, workspace_id: int) -> list[MemberInfo]:
    """Every active member of the workspace, by display name."""
    rows = session.execute(
        select(User.id, User.display_name, User.email, Membership.role, Membership.wecom_userid)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.workspace_id == workspace_id, Membership.is_active.is_(True), User.is_active.is_(True)
        )
        .order_by(User.display_name, User.id)
    )
    return [MemberInfo(uid, name, email, Role(role), wecom) for uid, name, email, role, wecom in rows]


def member_id_by_wecom_userid(session: Session, *, workspace_id: int, wecom_userid: str) -> int | None:
    """The user id of the active member whose WeCom user id this is, or None."""
    return session.scalar(
        select(Membership.user_id).where(
            Membership.workspace_id == workspace_id,
            Membership.wecom_userid == wecom_userid,
            Membership.is_active.is_(True),
        )
    )
