"""Membership verbs: points rules, the points ledger (earn, spend, reverse, expire, adjust — each source
once, the balance never below zero), points from orders read from the outbox, and tiers.

The ledger is append-only: `PointsEntry` rows are inserted, never updated or deleted; the account's
balance is their sum, kept in step under the account row's lock. docs/membership.md states the rules.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEvent, DomainEventType
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.coupons.models import IssueSource
from siyu.customers import service as customers
from siyu.membership.models import (
    Action,
    CustomerTier,
    EntryKind,
    MembershipEventCursor,
    PointsAccount,
    PointsEntry,
    PointsRules,
    Tier,
    TierBasis,
    TierChange,
)
from siyu.membership.schemas import EntryOut, MemberView, RulesIn, RulesOut, TierChangeOut, TierIn, TierOut
from siyu.orders import service as orders

ROLLING = timedelta(days=365)
_ORDER_EVENTS = (
    str(DomainEventType.ORDER_PLACED),
    str(DomainEventType.ORDER_UPDATED),
    str(DomainEventType.ORDER_REFUNDED),
)
_MERGE_EVENTS = (str(DomainEventType.IDENTITY_MERGED), str(DomainEventType.IDENTITY_UNMERGED))
_EARNING_STATUSES = ("paid", "partially_refunded")
_ACCOUNTS: Table = PointsAccount.__table__  # type: ignore[assignment]


class InsufficientPoints(Conflict):
    """A debit larger than the balance."""


def _insert(session: Session) -> Any:
    return pg_insert if is_postgres(session) else sqlite_insert


def add_months(value: datetime, months: int) -> datetime:
    """`value` plus whole calendar months (31 Jan + 1 month = 28 or 29 Feb)."""
    month = value.month - 1 + months
    year, month = value.year + month // 12, month % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


# --- rules ------------------------------------------------------------------------------------------


def get_rules(session: Session, *, workspace_id: int) -> PointsRules:
    """The workspace's points rules (defaults, unsaved, until a member sets them)."""
    rules = session.get(PointsRules, workspace_id)
    if rules is None:
        rules = PointsRules(
            workspace_id=workspace_id,
            points_per_yuan=1,
            sign_up_points=0,
            review_points=0,
            referral_points=0,
            expiry_months=None,
            tier_basis=TierBasis.SPEND.value,
        )
    return rules


def rules_out(rules: PointsRules) -> RulesOut:
    return RulesOut(
        points_per_yuan=rules.points_per_yuan,
        sign_up_points=rules.sign_up_points,
        review_points=rules.review_points,
        referral_points=rules.referral_points,
        expiry_months=rules.expiry_months,
        tier_basis=TierBasis(rules.tier_basis),
        updated_at=rules.updated_at,
    )


def set_rules(session: Session, *, actor: Actor, body: RulesIn) -> PointsRules:
    """Replace the workspace's points rules; entries already written keep the points they gave."""
    actor.require(Permission.MANAGE)
    rules = session.get(PointsRules, actor.workspace_id)
    if rules is None:
        rules = PointsRules(workspace_id=actor.workspace_id)
        session.add(rules)
    for name, value in body.model_dump().items():
        setattr(rules, name, value.value if isinstance(value, TierBasis) else value)
    rules.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="points_rules.set",
        target_type="points_rules",
        target_id=actor.workspace_id,
        detail=body.model_dump(mode="json"),
    )
    return rules


def points_for_amount(rules: PointsRules, cents: int) -> int:
    """Points for a net amount paid: per whole yuan (¥32.90 at 1 point per ¥ earns 32)."""
    return max(0, cents) // 100 * rules.points_per_yuan


# --- the ledger -------------------------------------------------------------------------------------


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


def earn_for_action(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    action: Action | str,
    source_ref: str,
    points: int | None = None,
    at: datetime | None = None,
) -> PointsEntry | None:
    """Points for an action (sign-up, review, referral: the rules' fixed points; custom: `points`),
    once per (action, source_ref). None when the rules give the action no points."""
    try:
        action = Action(action)
    except ValueError:
        raise ValidationFailed(
            f"unknown action {action!r}", where="action", hint="one of " + ", ".join(a.value for a in Action)
        ) from None
    _ensure_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    rules = get_rules(session, workspace_id=workspace_id)
    if action is Action.CUSTOM:
        if not points or points < 0:
            raise ValidationFailed("a custom action needs its points", where="points", hint="e.g. 50")
        amount = points
    else:
        amount = {
            Action.SIGN_UP: rules.sign_up_points,
            Action.REVIEW: rules.review_points,
            Action.REFERRAL: rules.referral_points,
        }[action]
    if amount <= 0:
        return None
    entry = apply(
        session,
        workspace_id=workspace_id,
        customer_id=customer_id,
        kind=EntryKind.EARN,
        points=amount,
        source_kind=f"action:{action.value}",
        source_ref=source_ref,
        at=at,
    )
    if TierBasis(rules.tier_basis) is TierBasis.POINTS:
        evaluate_tier(session, workspace_id=workspace_id, customer_id=customer_id, at=at)
    return entry


def spend(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    points: int,
    source_ref: str,
    note: str | None = None,
) -> PointsEntry:
    """Use points (for a reward): refused beyond the balance; once per source_ref."""
    if points <= 0:
        raise ValidationFailed("spend a positive number of points", where="points")
    return apply(
        session,
        workspace_id=workspace_id,
        customer_id=customer_id,
        kind=EntryKind.SPEND,
        points=-points,
        source_kind="spend",
        source_ref=source_ref,
        note=note,
    )


def adjust(
    session: Session, *, actor: Actor, customer_id: int, points: int, reason: str, idempotency_key: str
) -> PointsEntry:
    """A member's correction: adds or takes points (never below zero), once per idempotency key."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    entry = apply(
        session,
        workspace_id=actor.workspace_id,
        customer_id=customer_id,
        kind=EntryKind.ADJUST,
        points=points,
        source_kind="adjust",
        source_ref=idempotency_key,
        note=reason[:200],
        actor_user_id=actor.user_id,
    )
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="points.adjusted",
        target_type="customer",
        target_id=customer_id,
        detail={"points": points, "reason": reason[:200], "entry_id": entry.id},
    )
    return entry


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


# --- points from orders -----------------------------------------------------------------------------


def record_order(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int,
    external_id: str,
    status: str,
    paid_cents: int,
    refunded_cents: int,
    at: datetime | None = None,
    rules: PointsRules | None = None,
) -> list[PointsEntry]:
    """Bring an order's points in line with its state: a paid order earns once; each larger refund (or a
    cancellation) takes back the points of what was refunded, floored at the balance. Idempotent."""
    rules = rules or get_rules(session, workspace_id=workspace_id)
    written: list[PointsEntry] = []
    earned = _entry(session, workspace_id=workspace_id, source_kind="order", source_ref=external_id)
    if earned is None and status in _EARNING_STATUSES:
        points = points_for_amount(rules, paid_cents)
        if points > 0:
            earned = apply(
                session,
                workspace_id=workspace_id,
                customer_id=customer_id,
                kind=EntryKind.EARN,
                points=points,
                source_kind="order",
                source_ref=external_id,
                order_ref=external_id,
                at=at,
            )
            written.append(earned)
    if earned is None or earned.points <= 0:
        return written
    net = 0 if status in ("refunded", "cancelled") else paid_cents - refunded_cents
    keep = min(earned.points, points_for_amount(rules, net))
    taken = session.scalar(
        select(func.coalesce(-func.sum(PointsEntry.points - PointsEntry.shortfall), 0)).where(
            PointsEntry.workspace_id == workspace_id,
            PointsEntry.order_ref == external_id,
            PointsEntry.source_kind == "order_refund",
        )
    )
    to_take = earned.points - keep - int(taken or 0)
    if to_take > 0:
        written.append(
            apply(
                session,
                workspace_id=workspace_id,
                customer_id=customer_id,
                kind=EntryKind.REVERSE,
                points=-to_take,
                source_kind="order_refund",
                source_ref=f"{external_id}@{refunded_cents}:{status}",
                order_ref=external_id,
                floor_at_zero=True,
                at=at,
            )
        )
    return written


def _cursor(session: Session, workspace_id: int) -> MembershipEventCursor:
    session.execute(
        _insert(session)(MembershipEventCursor)
        .values(workspace_id=workspace_id, last_event_id=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    stmt = select(MembershipEventCursor).where(MembershipEventCursor.workspace_id == workspace_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def _transfer(
    session: Session, *, workspace_id: int, from_id: int, to_id: int, kinds: tuple[str, str], ref: str
) -> bool:
    """Move a balance between two customers as a debit and a credit entry of one source (a merge or an
    unmerge): applied once, however often it is asked."""
    out_kind, in_kind = kinds
    taken = _entry(session, workspace_id=workspace_id, source_kind=out_kind, source_ref=ref)
    if taken is None:
        account = session.get(PointsAccount, from_id)
        if account is None or account.workspace_id != workspace_id or account.balance <= 0:
            return False
        taken = apply(
            session,
            workspace_id=workspace_id,
            customer_id=from_id,
            kind=EntryKind.ADJUST,
            points=-account.balance,
            source_kind=out_kind,
            source_ref=ref,
            note=f"to customer {to_id}",
            floor_at_zero=True,
        )
    if taken.points < 0:
        apply(
            session,
            workspace_id=workspace_id,
            customer_id=to_id,
            kind=EntryKind.ADJUST,
            points=-taken.points,
            source_kind=in_kind,
            source_ref=ref,
            note=f"from customer {from_id}",
        )
    return True


def _on_merge(
    session: Session, *, workspace_id: int, type: str, customer_id: int, payload: dict[str, Any]
) -> set[int]:
    """A merge moves the merged record's balance to the survivor; an unmerge moves back what the merge
    moved in (at most the survivor's balance)."""
    ref = str(payload.get("merge_log_id", ""))
    if not ref:
        return set()
    if type == str(DomainEventType.IDENTITY_MERGED):
        merged = int(payload["merged_id"])
        moved = _transfer(
            session,
            workspace_id=workspace_id,
            from_id=merged,
            to_id=customer_id,
            kinds=("merge_out", "merge_in"),
            ref=ref,
        )
        return {customer_id} if moved else set()
    survivor, merged = int(payload["survivor_id"]), int(payload["merged_id"])
    moved_in = _entry(session, workspace_id=workspace_id, source_kind="merge_in", source_ref=ref)
    if moved_in is None or _entry(
        session, workspace_id=workspace_id, source_kind="unmerge_out", source_ref=ref
    ):
        return set()
    back = min(moved_in.points, balance(session, workspace_id=workspace_id, customer_id=survivor))
    if back > 0:
        out = apply(
            session,
            workspace_id=workspace_id,
            customer_id=survivor,
            kind=EntryKind.ADJUST,
            points=-back,
            source_kind="unmerge_out",
            source_ref=ref,
            note=f"back to customer {merged}",
            floor_at_zero=True,
        )
        apply(
            session,
            workspace_id=workspace_id,
            customer_id=merged,
            kind=EntryKind.ADJUST,
            points=-out.points,
            source_kind="unmerge_in",
            source_ref=ref,
            note=f"back from customer {survivor}",
        )
    return {survivor, merged}


def process_order_events(session: Session, *, workspace_id: int, batch: int = 2000) -> int:
    """Read the workspace's order events (placed, updated, refunded) after the cursor and bring each
    order's points in line (`record_order`); merges move points to the survivor and unmerges move them
    back. Then re-evaluate the tiers of the customers touched. Returns how many events were read; call
    until 0. Concurrent runs wait for the cursor row's lock."""
    cursor = _cursor(session, workspace_id)
    rules = get_rules(session, workspace_id=workspace_id)
    events = list(
        session.execute(
            select(DomainEvent.id, DomainEvent.type, DomainEvent.customer_id, DomainEvent.payload)
            .where(
                DomainEvent.workspace_id == workspace_id,
                DomainEvent.id > cursor.last_event_id,
                DomainEvent.type.in_(_ORDER_EVENTS + _MERGE_EVENTS),
            )
            .order_by(DomainEvent.id)
            .limit(batch)
        )
    )
    refs = sorted({str(p["external_id"]) for _i, _t, _c, p in events if p.get("external_id")})
    earned_refs = _earned_order_refs(session, workspace_id=workspace_id, refs=refs)
    touched: set[int] = set()
    # new paid orders earn in bulk (the common case of an import); anything else — a refund, a status
    # change, a merge — goes one by one, after the earns gathered before it, so the order is kept
    pending: list[tuple[int, str, int]] = []
    seen: set[str] = set()

    def flush() -> None:
        touched.update(_earn_new_orders(session, workspace_id=workspace_id, rules=rules, orders=pending))
        pending.clear()

    for _id, type_, customer_id, payload in events:
        if type_ in _MERGE_EVENTS:
            if customer_id is not None:
                flush()
                touched |= _on_merge(
                    session, workspace_id=workspace_id, type=type_, customer_id=customer_id, payload=payload
                )
            continue
        external_id = payload.get("external_id")
        if customer_id is None or not external_id:
            continue
        external_id = str(external_id)
        status = str(payload.get("status", ""))
        paid = int(payload.get("paid_cents") or 0)
        refunded = int(payload.get("refunded_cents") or 0)
        if external_id not in seen and external_id not in earned_refs and status == "paid" and not refunded:
            seen.add(external_id)
            pending.append((customer_id, external_id, paid))
            continue
        seen.add(external_id)
        flush()
        written = record_order(
            session,
            workspace_id=workspace_id,
            customer_id=customer_id,
            external_id=external_id,
            status=status,
            paid_cents=paid,
            refunded_cents=refunded,
            rules=rules,
        )
        if written:
            touched.add(customer_id)
    flush()
    if events:
        cursor.last_event_id = events[-1][0]
        cursor.updated_at = utcnow()
    if touched and _tiers(session, workspace_id):
        for customer_id in sorted(touched):
            evaluate_tier(session, workspace_id=workspace_id, customer_id=customer_id)
    return len(events)


def _earned_order_refs(session: Session, *, workspace_id: int, refs: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(refs), 1000):
        found.update(
            session.scalars(
                select(PointsEntry.source_ref).where(
                    PointsEntry.workspace_id == workspace_id,
                    PointsEntry.source_kind == "order",
                    PointsEntry.source_ref.in_(refs[start : start + 1000]),
                )
            )
        )
    return found


def _earn_new_orders(
    session: Session, *, workspace_id: int, rules: PointsRules, orders: list[tuple[int, str, int]]
) -> set[int]:
    """The earn entries of paid orders that have none yet, in a few statements: each account created if
    missing and locked (in id order), the entries inserted, the balances raised. The caller holds the
    cursor lock and has checked no entry exists for these orders; the unique source still guards."""
    earning = [(c, ref, points_for_amount(rules, paid)) for c, ref, paid in orders]
    earning = [e for e in earning if e[2] > 0]
    if not earning:
        return set()
    now = utcnow()
    expires_at = add_months(now, rules.expiry_months) if rules.expiry_months else None
    customer_ids = sorted({c for c, _r, _p in earning})
    session.execute(
        _insert(session)(_ACCOUNTS).on_conflict_do_nothing(),
        [
            {"workspace_id": workspace_id, "customer_id": c, "balance": 0, "updated_at": now}
            for c in customer_ids
        ],
    )
    balances: dict[int, int] = {}
    for start in range(0, len(customer_ids), 1000):
        stmt = (
            select(PointsAccount.customer_id, PointsAccount.balance)
            .where(PointsAccount.customer_id.in_(customer_ids[start : start + 1000]))
            .order_by(PointsAccount.customer_id)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update()
        balances.update(dict(session.execute(stmt).tuples().all()))
    rows = []
    for customer_id, ref, points in earning:
        balances[customer_id] += points
        rows.append(
            {
                "workspace_id": workspace_id,
                "customer_id": customer_id,
                "kind": EntryKind.EARN.value,
                "points": points,
                "balance_after": balances[customer_id],
                "shortfall": 0,
                "source_kind": "order",
                "source_ref": ref,
                "order_ref": ref,
                "expires_at": expires_at,
                "note": None,
                "actor_user_id": None,
                "created_at": now,
            }
        )
    session.execute(insert(PointsEntry), rows)
    session.execute(
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.customer_id == bindparam("cid"))
        .values(balance=bindparam("new_balance"), updated_at=now),
        [{"cid": c, "new_balance": balances[c]} for c in customer_ids],
    )
    # the ORM's copies of these accounts (if any) are stale now
    for account in session.identity_map.values():
        if isinstance(account, PointsAccount) and account.customer_id in balances:
            session.expire(account)
    domain_events.record_many(
        session,
        (
            {
                "workspace_id": workspace_id,
                "type": DomainEventType.POINTS_CHANGED,
                "customer_id": row["customer_id"],
                "payload": {
                    "kind": "earn",
                    "points": row["points"],
                    "balance": row["balance_after"],
                    "order_ref": row["source_ref"],
                },
                "occurred_at": now,
            }
            for row in rows
        ),
    )
    return set(customer_ids)


# --- tiers ------------------------------------------------------------------------------------------


def _tier_out(tier: Tier) -> TierOut:
    return TierOut(
        id=tier.id,
        name=tier.name,
        threshold=tier.threshold,
        coupon_template_ids=[int(i) for i in (tier.benefits or {}).get("coupon_template_ids", [])],
    )


def list_tiers(session: Session, *, workspace_id: int) -> list[TierOut]:
    return [_tier_out(t) for t in _tiers(session, workspace_id)]


def _tiers(session: Session, workspace_id: int) -> list[Tier]:
    return list(
        session.scalars(select(Tier).where(Tier.workspace_id == workspace_id).order_by(Tier.threshold))
    )


def create_tier(session: Session, *, actor: Actor, body: TierIn) -> TierOut:
    """A tier reached at `threshold` of the rules' basis; its coupon pack is issued on each upgrade."""
    actor.require(Permission.MANAGE)
    name = " ".join(body.name.split())
    if not name:
        raise ValidationFailed("the tier needs a name", where="name", hint="e.g. 金卡")
    for tier in _tiers(session, actor.workspace_id):
        if tier.name == name:
            raise Conflict(f"a tier {name!r} exists already", where="name")
        if tier.threshold == body.threshold:
            raise Conflict(f"tier {tier.name!r} has threshold {body.threshold} already", where="threshold")
    for template_id in body.coupon_template_ids:
        coupons.get_template(session, workspace_id=actor.workspace_id, template_id=template_id)
    tier = Tier(
        workspace_id=actor.workspace_id,
        name=name,
        threshold=body.threshold,
        benefits={"coupon_template_ids": list(dict.fromkeys(body.coupon_template_ids))},
        created_at=utcnow(),
    )
    session.add(tier)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="tier.created",
        target_type="member_tier",
        target_id=tier.id,
        detail={"name": name, "threshold": body.threshold},
    )
    return _tier_out(tier)


def basis_value(
    session: Session, *, workspace_id: int, customer_id: int, basis: TierBasis, at: datetime
) -> int:
    """The customer's rolling 12-month value: net spend on paid orders (cents), or points earned."""
    if basis is TierBasis.SPEND:
        spend = orders.order_measure_by_customer(
            workspace_id, measure="sum", placed_after=at - ROLLING, placed_until=at
        ).subquery()
        value = session.scalar(select(spend.c.value).where(spend.c.customer_id == customer_id))
        return int(value or 0)
    earned = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.workspace_id == workspace_id,
            PointsEntry.customer_id == customer_id,
            PointsEntry.kind == EntryKind.EARN.value,
            PointsEntry.created_at > at - ROLLING,
            PointsEntry.created_at <= at,
        )
    )
    return int(earned or 0)


def evaluate_tier(
    session: Session, *, workspace_id: int, customer_id: int, at: datetime | None = None
) -> TierChange | None:
    """Put the customer in the highest tier their rolling value reaches (none below the lowest); a change
    is recorded with its direction, and an upgrade issues the new tier's coupon pack (once per change)."""
    now = at or utcnow()
    rules = get_rules(session, workspace_id=workspace_id)
    basis = TierBasis(rules.tier_basis)
    tiers = _tiers(session, workspace_id)
    session.execute(
        _insert(session)(CustomerTier)
        .values(workspace_id=workspace_id, customer_id=customer_id, tier_id=None, basis_value=0, since=now)
        .on_conflict_do_nothing()
    )
    stmt = select(CustomerTier).where(CustomerTier.customer_id == customer_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    current = session.scalars(stmt.execution_options(populate_existing=True)).one()
    value = basis_value(session, workspace_id=workspace_id, customer_id=customer_id, basis=basis, at=now)
    reached = [t for t in tiers if t.threshold <= value]
    target = reached[-1] if reached else None
    current.basis_value = value
    target_id = target.id if target else None
    if target_id == current.tier_id:
        return None
    rank = {t.id: position for position, t in enumerate(tiers)}
    before = rank.get(current.tier_id, -1) if current.tier_id is not None else -1
    after = rank[target_id] if target_id is not None else -1
    change = TierChange(
        workspace_id=workspace_id,
        customer_id=customer_id,
        from_tier_id=current.tier_id,
        to_tier_id=target_id,
        direction="up" if after > before else "down",
        basis=basis.value,
        basis_value=value,
        changed_at=now,
    )
    session.add(change)
    session.flush()
    current.tier_id = target_id
    current.since = now
    issued: list[int] = []
    if change.direction == "up" and target is not None:
        for template_id in (target.benefits or {}).get("coupon_template_ids", []):
            try:
                coupon = coupons.issue(
                    session,
                    workspace_id=workspace_id,
                    template_id=int(template_id),
                    customer_id=customer_id,
                    source_kind=IssueSource.TIER_UPGRADE,
                    source_ref=f"tier:{target.id}",
                    idempotency_key=f"tier-change:{change.id}",
                    at=now,
                )
            except (Conflict, NotFound):
                continue  # a capped or archived template: the upgrade stands without that coupon
            issued.append(coupon.id)
    domain_events.record(
        session,
        workspace_id=workspace_id,
        type=DomainEventType.TIER_CHANGED,
        customer_id=customer_id,
        payload={
            "from_tier_id": change.from_tier_id,
            "to_tier_id": change.to_tier_id,
            "direction": change.direction,
            "coupon_ids": issued,
        },
        occurred_at=now,
    )
    return change


def evaluate_tiers(session: Session, *, workspace_id: int, at: datetime | None = None) -> int:
    """Re-evaluate every member with a tier or points (downgrades as spend leaves the 12-month window);
    returns how many changed."""
    ids = set(
        session.scalars(select(CustomerTier.customer_id).where(CustomerTier.workspace_id == workspace_id))
    )
    ids |= set(
        session.scalars(select(PointsAccount.customer_id).where(PointsAccount.workspace_id == workspace_id))
    )
    return sum(
        1
        for customer_id in sorted(ids)
        if evaluate_tier(session, workspace_id=workspace_id, customer_id=customer_id, at=at) is not None
    )


# --- reading a member -------------------------------------------------------------------------------


def member_view(session: Session, *, actor: Actor, customer_id: int) -> MemberView:
    """A customer's membership: balance, ledger, tier and its history, and the coupons they hold."""
    actor.require(Permission.READ)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    workspace_id = actor.workspace_id
    names = {t.id: t.name for t in _tiers(session, workspace_id)}
    current = session.get(CustomerTier, customer_id)
    rules = get_rules(session, workspace_id=workspace_id)
    history = session.scalars(
        select(TierChange)
        .where(TierChange.workspace_id == workspace_id, TierChange.customer_id == customer_id)
        .order_by(TierChange.id.desc())
        .limit(50)
    )
    return MemberView(
        customer_id=customer_id,
        balance=balance(session, workspace_id=workspace_id, customer_id=customer_id),
        tier=names.get(current.tier_id) if current is not None and current.tier_id is not None else None,
        tier_since=current.since if current is not None and current.tier_id is not None else None,
        basis=rules.tier_basis,
        basis_value=current.basis_value if current is not None else 0,
        entries=ledger(session, workspace_id=workspace_id, customer_id=customer_id, limit=50),
        tier_history=[
            TierChangeOut(
                id=c.id,
                from_tier=names.get(c.from_tier_id) if c.from_tier_id is not None else None,
                to_tier=names.get(c.to_tier_id) if c.to_tier_id is not None else None,
                direction=c.direction,
                basis=c.basis,
                basis_value=c.basis_value,
                changed_at=c.changed_at,
            )
            for c in history
        ],
        coupons=coupons.coupons_of_customer(session, workspace_id=workspace_id, customer_id=customer_id),
    )


def earn_for_action_by_actor(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    action: Action | str,
    source_ref: str,
    points: int | None,
) -> PointsEntry | None:
    """A member (or an API client: the review system, the referral campaign) records an action."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return earn_for_action(
        session,
        workspace_id=actor.workspace_id,
        customer_id=customer_id,
        action=action,
        source_ref=source_ref,
        points=points,
    )


def customer_ledger(session: Session, *, actor: Actor, customer_id: int, limit: int = 100) -> list[EntryOut]:
    actor.require(Permission.READ)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return ledger(session, workspace_id=actor.workspace_id, customer_id=customer_id, limit=limit)
