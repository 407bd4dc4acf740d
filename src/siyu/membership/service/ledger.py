"""The append-only points ledger: one entry per source, the balance kept in step under the account's
lock and never below zero, FIFO expiry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.membership.models import (
    EntryKind,
    PointsAccount,
    PointsEntry,
)
from siyu.membership.schemas import EntryOut
from siyu.membership.service.rules import InsufficientPoints, _insert, add_months, get_rules


def _entry(session: Session, *, workspace_id: int, source_kind: str, source_ref: str) -> PointsEntry | None:
    return session.scalar(
        select(PointsEntry).where(
            PointsEntry.workspace_id == workspace_id,
            PointsEntry.source_kind == source_kind,
            PointsEntry.source_ref == source_ref,
        )
    )


def _same_source(found: PointsEntry, customer_id: int) -> PointsEntry:
    if found.customer_id != customer_id:
        raise Conflict(
            f"source {found.source_kind} {found.source_ref!r} gave points to another customer already",
            where="source_ref",
            hint="a source (an order, a review, an idempotency key) applies to one customer once",
        )
    return found


def _locked_account(session: Session, *, workspace_id: int, customer_id: int) -> PointsAccount:
    """The customer's account, created if missing, locked until commit on PostgreSQL (SQLite serializes
    writers already)."""
    session.execute(
        _insert(session)(PointsAccount)
        .values(workspace_id=workspace_id, customer_id=customer_id, balance=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    stmt = select(PointsAccount).where(PointsAccount.customer_id == customer_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    account = session.scalars(stmt.execution_options(populate_existing=True)).one()
    if account.workspace_id != workspace_id:
        raise NotFound(f"customer {customer_id} does not exist in this workspace", where="customer_id")
    return account


def _due_to_expire(session: Session, *, customer_id: int, at: datetime) -> int:
    """Points of credits past their expiry not yet consumed. Debits (spends, reversals, expiries,
    negative adjustments) consume the soonest-expiring points first, so what remains of the credits
    expired by `at` is their sum less every debit so far, if positive."""
    expired_credits = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.customer_id == customer_id,
            PointsEntry.points > 0,
            PointsEntry.expires_at.is_not(None),
            PointsEntry.expires_at <= at,
        )
    )
    debits = session.scalar(
        select(func.coalesce(-func.sum(PointsEntry.points), 0)).where(
            PointsEntry.customer_id == customer_id, PointsEntry.points < 0
        )
    )
    return max(0, int(expired_credits or 0) - int(debits or 0))


def _write(
    session: Session,
    *,
    account: PointsAccount,
    kind: EntryKind,
    points: int,
    source_kind: str,
    source_ref: str,
    at: datetime,
    order_ref: str | None = None,
    expires_at: datetime | None = None,
    note: str | None = None,
    actor_user_id: int | None = None,
    shortfall: int = 0,
) -> PointsEntry:
    entry = PointsEntry(
        workspace_id=account.workspace_id,
        customer_id=account.customer_id,
        kind=kind.value,
        points=points,
        balance_after=account.balance + points,
        shortfall=shortfall,
        source_kind=source_kind,
        source_ref=source_ref,
        order_ref=order_ref,
        expires_at=expires_at,
        note=note,
        actor_user_id=actor_user_id,
        created_at=at,
    )
    session.add(entry)
    session.flush()
    account.balance += points
    account.updated_at = at
    domain_events.record(
        session,
        workspace_id=account.workspace_id,
        type=DomainEventType.POINTS_CHANGED,
        customer_id=account.customer_id,
        payload={"entry_id": entry.id, "kind": kind.value, "points": points, "balance": account.balance},
        occurred_at=at,
    )
    return entry


def _expire_now(session: Session, *, account: PointsAccount, at: datetime) -> PointsEntry | None:
    due = _due_to_expire(session, customer_id=account.customer_id, at=at)
    if due <= 0:
        return None
    due = min(due, account.balance)
    return _write(
        session,
        account=account,
        kind=EntryKind.EXPIRE,
        points=-due,
        source_kind="expiry",
        source_ref=f"{account.customer_id}@{at.isoformat()}",
        at=at,
    )


def apply(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    kind: EntryKind,
    points: int,
    source_kind: str,
    source_ref: str,
    order_ref: str | None = None,
    note: str | None = None,
    actor_user_id: int | None = None,
    floor_at_zero: bool = False,
    at: datetime | None = None,
) -> PointsEntry:
    """Append one entry for a source, or return the entry the same (source_kind, source_ref) wrote
    before: a retry — even a concurrent one — applies once. A debit first expires what is due, then is
    refused (InsufficientPoints) if larger than the balance — or, with `floor_at_zero` (reversals),
    takes the balance and records the rest as `shortfall`. Credits expire by the rules' policy."""
    source_ref = source_ref.strip()
    if not source_ref or len(source_ref) > 160:
        raise ValidationFailed(
            "a points entry needs a source reference of 1 to 160 characters", where="source_ref"
        )
    if points == 0:
        raise ValidationFailed("an entry of 0 points changes nothing", where="points")
    found = _entry(session, workspace_id=workspace_id, source_kind=source_kind, source_ref=source_ref)
    if found is not None:
        return _same_source(found, customer_id)
    account = _locked_account(session, workspace_id=workspace_id, customer_id=customer_id)
    # a concurrent retry may have committed while this one waited for the lock
    found = _entry(session, workspace_id=workspace_id, source_kind=source_kind, source_ref=source_ref)
    if found is not None:
        return _same_source(found, customer_id)
    now = at or utcnow()
    shortfall = 0
    expires_at = None
    if points < 0:
        _expire_now(session, account=account, at=now)
        if account.balance + points < 0:
            if not floor_at_zero:
                raise InsufficientPoints(
                    f"customer {customer_id} has {account.balance} points; {-points} cannot be taken",
                    where="points",
                    hint="take at most the balance",
                    details={"balance": account.balance},
                )
            shortfall = -(account.balance + points)
            points = -account.balance
            if points == 0:
                # nothing left to take back: the entry still records the source, so it applies once
                return _write_empty(
                    session,
                    account=account,
                    kind=kind,
                    shortfall=shortfall,
                    source_kind=source_kind,
                    source_ref=source_ref,
                    order_ref=order_ref,
                    note=note,
                    at=now,
                )
    else:
        rules = get_rules(session, workspace_id=workspace_id)
        if rules.expiry_months:
            expires_at = add_months(now, rules.expiry_months)
    return _write(
        session,
        account=account,
        kind=kind,
        points=points,
        source_kind=source_kind,
        source_ref=source_ref,
        at=now,
        order_ref=order_ref,
        expires_at=expires_at,
        note=note,
        actor_user_id=actor_user_id,
        shortfall=shortfall,
    )


def _write_empty(
    session: Session,
    *,
    account: PointsAccount,
    kind: EntryKind,
    shortfall: int,
    source_kind: str,
    source_ref: str,
    order_ref: str | None,
    note: str | None,
    at: datetime,
) -> PointsEntry:
    entry = PointsEntry(
        workspace_id=account.workspace_id,
        customer_id=account.customer_id,
        kind=kind.value,
        points=0,
        balance_after=account.balance,
        shortfall=shortfall,
        source_kind=source_kind,
        source_ref=source_ref,
        order_ref=order_ref,
        note=note,
        created_at=at,
    )
    session.add(entry)
    session.flush()
    return entry


def _ensure_customer(session: Session, *, workspace_id: int, customer_id: int) -> None:
    live = customers.live_customer_ids(workspace_id).subquery()
    if session.scalar(select(live.c[0]).where(live.c[0] == customer_id)) is None:
        raise NotFound(f"customer {customer_id} does not exist in this workspace", where="customer_id")


def balance(session: Session, *, workspace_id: int, customer_id: int) -> int:
    account = session.get(PointsAccount, customer_id)
    return 0 if account is None or account.workspace_id != workspace_id else account.balance


def ledger(session: Session, *, workspace_id: int, customer_id: int, limit: int = 100) -> list[EntryOut]:
    """A customer's entries, newest first."""
    rows = session.scalars(
        select(PointsEntry)
        .where(PointsEntry.workspace_id == workspace_id, PointsEntry.customer_id == customer_id)
        .order_by(PointsEntry.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    return [EntryOut.model_validate(row) for row in rows]


def expire_points(session: Session, *, workspace_id: int, at: datetime | None = None) -> int:
    """The expiry sweep: an expiry entry for every account with points past their expiry; returns the
    points expired. Running it again expires nothing more."""
    now = at or utcnow()
    due_customers = session.scalars(
        select(PointsEntry.customer_id)
        .where(
            PointsEntry.workspace_id == workspace_id,
            PointsEntry.points > 0,
            PointsEntry.expires_at.is_not(None),
            PointsEntry.expires_at <= now,
        )
        .distinct()
        .order_by(PointsEntry.customer_id)
    )
    total = 0
    for customer_id in list(due_customers):
        account = _locked_account(session, workspace_id=workspace_id, customer_id=customer_id)
        entry = _expire_now(session, account=account, at=now)
        total += -entry.points if entry is not None else 0
    return total
