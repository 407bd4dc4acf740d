"""Request dependencies: the database session of a request, who is acting, and CSRF protection.

A request runs in one transaction: committed when the handler returns, rolled back when it raises.
Authentication is by `Authorization: Bearer sy_…` (API tokens; no CSRF needed) or by the session cookie
(pages and the browser; unsafe methods need the CSRF token in `X-CSRF-Token` or a `csrf_token` field).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import BackgroundTasks, Depends, Request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.core.db import Database
from siyu.core.errors import PermissionDenied, Unauthorized
from siyu.core.ratelimit import RateLimits

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


def rate_limits(request: Request) -> RateLimits:
    """The app's rate limits (one per app, over the storage settings name)."""
    limits: RateLimits = request.app.state.rate_limits
    return limits


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _end(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per writing request, committed when the handler returns and before the response
    is sent (a failed commit is the client's error, not a lost write); only unsafe methods take the
    SQLite write lock up front. A request that only reads needs no snapshot across its statements (on
    PostgreSQL it runs in autocommit: see `Database.session`).

    The session connects on its first statement, in whichever thread runs it, so a request answered
    from memory never touches the pool. Ending a write is database I/O and runs in the thread pool;
    ending a read is not (an in-process COMMIT on SQLite, nothing at all in autocommit), so it runs here.
    """
    database = get_database(request)
    write = request.method not in SAFE_METHODS
    session = database.session(write=write, snapshot=write)
    inline = not write
    try:
        yield session
    except BaseException:
        if inline or not session.in_transaction():
            _end(session, commit=False)
        else:
            await run_in_threadpool(_end, session, commit=False)
        raise
    if inline or not session.in_transaction():
        _end(session, commit=True)
    else:
        await run_in_threadpool(_end, session, commit=True)


async def run_short_read(request: Request, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a short, indexed read for an `async def` handler: on SQLite in place, on PostgreSQL in the
    thread pool.

    SQLite runs in this process and a reader in WAL mode never waits for a lock, so a lookup of a
    fraction of a millisecond costs less in place than the thread hand-off it would need (about
    0.2 ms of CPU, measured); PostgreSQL is a network round trip, never made on the event loop. Only
    for reads bounded by an index (lookups by key), never for scans or writes.
    """
    if get_database(request).is_postgres:
        return await run_in_threadpool(function, *args, **kwargs)
    return function(*args, **kwargs)


# scope="function": the transaction ends when the handler returns, before the response goes out
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def csrf_token(request: Request) -> str:
    """The CSRF token of this browser session (created on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def _submitted_csrf(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


async def verified_csrf(request: Request) -> None:
    """For cookie sessions, refuse an unsafe request without the session's CSRF token (no database work)."""
    if request.method in SAFE_METHODS or request.headers.get("authorization", "").lower().startswith(
        "bearer "
    ):
        return
    if not request.session.get("user_id"):
        return
    submitted = await _submitted_csrf(request)
    expected = request.session.get("csrf")
    if not submitted or not expected or not hmac.compare_digest(submitted, str(expected)):
        raise PermissionDenied(
            "missing or wrong CSRF token",
            hint="reload the page and submit again; API clients should use a bearer token",
        )


def _record_token_use(database: Database, token_id: int) -> None:
    """Best effort, in its own short transaction, so that a read request stays read-only; a busy
    database must not fail the request."""
    try:
        with database.transaction() as session:
            auth.record_token_use(session, token_id=token_id)
    except OperationalError:
        pass


def _token_actor(session: Session, token: str, *, write: bool) -> tuple[Actor, int | None]:
    actor, token_to_touch = auth.authenticate_token(session, token=token)
    if token_to_touch is not None and write:  # this request's transaction takes the write lock anyway
        auth.record_token_use(session, token_id=token_to_touch)
        token_to_touch = None
    return actor, token_to_touch


async def _acting(request: Request, session: Session, background: BackgroundTasks) -> Actor | None:
    """The acting user, or None when the request carries no credentials; refuses a cookie-session
    write without its CSRF token.

    A token seen recently is answered from memory; database work runs in the thread pool, never on
    the event loop. A plain coroutine, not a dependency of its own: FastAPI spends more on solving each
    nested dependency than a cached lookup costs.
    """
    await verified_csrf(request)
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        cached = auth.cached_token_actor(token)
        if cached is not None:
            return cached
        write = request.method not in SAFE_METHODS
        actor, token_to_touch = await run_in_threadpool(_token_actor, session, token, write=write)
        if token_to_touch is not None:
            # after the response, when this request's connection is back in the pool: a request that
            # waited for a second connection while holding one could exhaust the pool under load
            background.add_task(_record_token_use, get_database(request), token_to_touch)
        return actor
    user_id = request.session.get("user_id")
    workspace_id = request.session.get("workspace_id")
    if not user_id or not workspace_id:
        return None
    try:
        return await run_in_threadpool(
            auth.actor_for, session, user_id=int(user_id), workspace_id=int(workspace_id)
        )
    except PermissionDenied:
        request.session.clear()
        return None


async def _authenticated(request: Request, session: Session, background: BackgroundTasks) -> Actor:
    actor = await _acting(request, session, background)
    if actor is None:
        raise Unauthorized("log in or send an API token", hint="Authorization: Bearer sy_…")
    return actor


async def current_actor(request: Request, session: DbSession, background: BackgroundTasks) -> Actor:
    """The acting user; 401 without credentials."""
    return await _authenticated(request, session, background)


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require(permission: Permission):  # type: ignore[no-untyped-def]
    """A dependency that returns the actor if their role grants `permission`."""

    async def dependency(request: Request, session: DbSession, background: BackgroundTasks) -> Actor:
        actor = await _authenticated(request, session, background)
        actor.require(permission)
        return actor

    return Depends(dependency)
