"""Points from orders and merges, read from the domain-event outbox in commit order (the shared reader,
consumer "membership"); new paid orders earn in bulk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from siyu.core import domain_events
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEventType
from siyu.core.timeutil import utcnow
from siyu.membership.models import (
    EntryKind,
    PointsAccount,
    PointsEntry,
    PointsRules,
)
from siyu.membership.service.ledger import _entry, apply, balance
from siyu.membership.service.rules import _insert, add_months, get_rules, points_for_amount
from siyu.membership.service.tiers import _tiers, evaluate_tier

_ORDER_EVENTS = (
    str(DomainEventType.ORDER_PLACED),
    str(DomainEventType.ORDER_UPDATED),
    str(DomainEventType.ORDER_REFUNDED),
)
_MERGE_EVENTS = (str(DomainEventType.IDENTITY_MERGED), str(DomainEventType.IDENTITY_UNMERGED))
CONSUMER = "membership"  # its place in domain_event_cursor
_EARNING_STATUSES = ("paid", "partially_refunded")
_ACCOUNTS: Table = PointsAccount.__table__  # type: ignore[assignment]


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
    """Read the workspace's next order events (placed, updated, refunded) in commit order and bring each
    order's points in line (`record_order`); merges move points to the survivor and unmerges move them
    back. Then re-evaluate the tiers of the customers touched. Returns how many events were read; call
    until it reads fewer than `batch`. Concurrent runs wait for the cursor row's lock."""
    read = domain_events.read_after(
        session,
        consumer=CONSUMER,
        workspace_id=workspace_id,
        limit=batch,
        types=_ORDER_EVENTS + _MERGE_EVENTS,
    )
    if read.position != read.start:
        domain_events.advance(session, consumer=CONSUMER, workspace_id=workspace_id, position=read.position)
    if not read.events:
        return 0
    rules = get_rules(session, workspace_id=workspace_id)
    events = [(e.id, e.type, e.customer_id, e.payload) for e in read.events]
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
