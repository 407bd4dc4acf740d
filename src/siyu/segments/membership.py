"""Live segment membership: who is in each saved segment now, kept current from the domain-event outbox.

- `process_pending` reads the events after the `segments` cursor, finds the segments whose rules read
  what the events changed (`dependencies`), and re-evaluates them for the customers of those events only,
  inside the database; a large backlog (a bulk import) is handled by one full evaluation instead.
- `sweep` evaluates in full the segments whose rules change with time alone (windows, `ago()`, scores).
- `backfill` evaluates a segment in full when it is created or its rule changes (and the segments that
  name it); `close` ends every stay when a segment is deleted.
- `reconcile` compares the kept membership with a full evaluation, records the drift, and repairs it.

Every change is a diff written in SQL (entered = matches − members, left = members − matches) with one
segment.entered / segment.left event per change in the same transaction. All writers take the
cursor's lock first, so two runs in parallel apply each change once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from siyu.core import audit, domain_events
from siyu.core.db import UTCDateTime
from siyu.core.domain_events import DomainEvent, DomainEventType
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.segments import compiler
from siyu.segments.dependencies import (
    EVENT_FAMILIES,
    WORKSPACE_EVENT_FAMILIES,
    Family,
    is_time_dependent,
    named_segments,
    rule_families,
)
from siyu.segments.models import Segment, SegmentMembership
from siyu.segments.rules import Rule, RuleError, rule_from_json
from siyu.tags import service as tags
from siyu.workspaces import service as workspaces

CONSUMER = "segments"
BULK_EVENTS = 5000  # a backlog larger than this is caught up by full evaluations, not event by event
CHUNK = 500  # customer ids per IN list
LAG_WARNING = timedelta(hours=2)  # a segment further behind than this shows as lagging

M = SegmentMembership
COLUMNS = customers.RULE_COLUMNS


@dataclass
class Change:
    """What one evaluation of one segment changed."""

    entered: int = 0
    left: int = 0

    def __iadd__(self, other: Change) -> Change:
        self.entered += other.entered
        self.left += other.left
        return self


@dataclass
class Run:
    """What a processing, sweep or backfill run did, per segment id."""

    events: int = 0
    last_event_id: int = 0
    remaining: int = 0
    full: bool = False
    changes: dict[int, Change] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def add(self, segment_id: int, change: Change) -> None:
        self.changes.setdefault(segment_id, Change())
        self.changes[segment_id] += change


@dataclass(frozen=True)
class _Live:
    segment: Segment
    families: frozenset[Family]


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _segments_in_order(session: Session, *, workspace_id: int) -> list[_Live]:
    """The workspace's live segments with the families their rules read, a segment after those it
    names (so that events of one change come out in dependency order)."""
    found = list(
        session.scalars(
            select(Segment)
            .where(Segment.workspace_id == workspace_id, Segment.deleted_at.is_(None))
            .order_by(Segment.id)
        )
    )
    documents = {s.name: s.rule for s in found}
    by_name = {s.name: s for s in found}
    ordered: list[Segment] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(segment: Segment) -> None:
        if state.get(segment.name):
            return  # done, or a circle (evaluating it reports the circle)
        state[segment.name] = 1
        for name in sorted(named_segments(segment.rule)):
            if name in by_name:
                visit(by_name[name])
        state[segment.name] = 2
        ordered.append(segment)

    for segment in found:
        visit(segment)
    live = []
    for segment in ordered:
        try:
            families = rule_families(rule_from_json(segment.rule), segment_rules=documents)
        except RuleError:
            families = frozenset({Family.ANY})
        live.append(_Live(segment, families))
    return live


def dependents(session: Session, *, workspace_id: int, segment_name: str) -> list[Segment]:
    """The live segments whose rules name this one, directly or through others, in dependency order."""
    live = _segments_in_order(session, workspace_id=workspace_id)
    names = {segment_name}
    found = []
    for item in live:
        if item.segment.name != segment_name and named_segments(item.segment.rule) & names:
            names.add(item.segment.name)
            found.append(item.segment)
    return found


# --- evaluation -------------------------------------------------------------------------------------


def _matches(session: Session, segment: Segment, now: datetime) -> Select[tuple[int]]:
    """The segment's rule as one statement of matching customer ids (RuleError if it no longer
    compiles, e.g. it names a deleted segment)."""
    tree: Rule = rule_from_json(segment.rule)
    return compiler.compile_rule(
        session, workspace_id=segment.workspace_id, rule=tree, now=now, within_segment=segment.name
    )


def _payload(segment: Segment, reason: str) -> dict[str, Any]:
    return {"segment_id": segment.id, "segment": segment.name, "version": segment.version, "reason": reason}


def _emit(
    session: Session, segment: Segment, *, entered: list[int], left: list[int], now: datetime, reason: str
) -> None:
    """One segment.left / segment.entered event per stay this change closed or opened."""
    payload = _payload(segment, reason)
    domain_events.record_many(
        session,
        (
            {
                "workspace_id": segment.workspace_id,
                "type": type_,
                "customer_id": customer_id,
                "payload": payload,
                "occurred_at": now,
            }
            for type_, ids in (
                (DomainEventType.SEGMENT_LEFT, left),
                (DomainEventType.SEGMENT_ENTERED, entered),
            )
            for customer_id in sorted(ids)
        ),
    )
    if segment.tag_id is not None:
        tags.sync_rule_tag(
            session,
            workspace_id=segment.workspace_id,
            tag_id=segment.tag_id,
            source_ref=rule_tag_ref(segment),
            add=entered,
            remove=left,
        )


def rule_tag_ref(segment: Segment) -> str:
    """The source_ref of the tags a segment's rule gives."""
    return f"segment:{segment.id}"


def _apply(
    session: Session,
    segment: Segment,
    *,
    matches: Select[tuple[int]] | None,
    scope: Iterable[int] | None,
    now: datetime,
    reason: str,
) -> Change:
    """Bring the segment's stored membership to `matches` (None: no one) for the customers in `scope`
    (None: everyone), in SQL; emits the events and follows the rule tag.

    Each write returns the ids it changed (UPDATE … RETURNING, INSERT … SELECT … RETURNING), so the
    events name exactly the changes the statements made, whatever other transactions commit between.
    """
    is_open = and_(M.segment_id == segment.id, M.left_at.is_(None))
    entered: list[int] = []
    left: list[int] = []
    for chunk in [None] if scope is None else list(_chunks(scope)):
        leave = update(M).where(is_open).values(left_at=now, left_version=segment.version)
        if chunk is not None:
            leave = leave.where(M.customer_id.in_(chunk))
        scoped = None
        if matches is not None:
            scoped = matches if chunk is None else matches.where(COLUMNS.customer_id.in_(chunk))
            # NOT EXISTS, not NOT IN: PostgreSQL plans it as an anti-join, where NOT IN over a subquery
            # too large to hash re-scans it for every row
            leave = leave.where(~scoped.where(COLUMNS.customer_id == M.customer_id).exists())
        left += session.scalars(
            leave.returning(M.customer_id).execution_options(synchronize_session=False)
        ).all()
        if scoped is None:
            continue
        member = select(M.customer_id).where(is_open, M.customer_id == COLUMNS.customer_id)
        new = scoped.where(~member.exists()).subquery()
        rows = select(
            literal(segment.workspace_id),
            literal(segment.id),
            next(iter(new.c)),
            literal(now, UTCDateTime()),
            literal(segment.version),
        )
        entered += session.scalars(
            insert(M)
            .from_select(["workspace_id", "segment_id", "customer_id", "entered_at", "entered_version"], rows)
            .returning(M.customer_id)
        ).all()
    if entered or left:
        _emit(session, segment, entered=entered, left=left, now=now, reason=reason)
    return Change(entered=len(entered), left=len(left))


def _evaluate(
    session: Session, segment: Segment, *, scope: Iterable[int] | None, now: datetime, reason: str, run: Run
) -> None:
    try:
        matches = _matches(session, segment, now)
    except RuleError as exc:
        # the stays are kept as they are, and the segment says why it stopped following its rule
        segment.evaluation_error = str(exc)
        run.errors[segment.id] = str(exc)
        return
    segment.evaluation_error = None
    run.add(segment.id, _apply(session, segment, matches=matches, scope=scope, now=now, reason=reason))
    if scope is None:
        segment.evaluated_at = now


def _lock(session: Session, *, workspace_id: int) -> None:
    domain_events.lock(session, consumer=CONSUMER, workspace_id=workspace_id)


# --- the verbs --------------------------------------------------------------------------------------


def process_pending(
    session: Session,
    *,
    workspace_id: int,
    limit: int = 1000,
    now: datetime | None = None,
    bulk_threshold: int = BULK_EVENTS,
) -> Run:
    """Handle the next domain events of the workspace (at most `limit`), in the caller's transaction:
    the affected segments are re-evaluated for the customers those events name, and the cursor moves
    past them. A backlog of more than `bulk_threshold` events is caught up at once by full evaluations
    of the segments its event types can affect. A scheduler or worker calls this; so does `siyu segment
    process` and the end of an import."""
    now = now or utcnow()
    batch = domain_events.read_after(
        session, consumer=CONSUMER, workspace_id=workspace_id, limit=limit, count=True
    )
    run = Run(last_event_id=batch.start.event_id)
    if not batch.pending:
        return run
    live = _segments_in_order(session, workspace_id=workspace_id)
    if batch.pending > max(bulk_threshold, limit):
        head, types = domain_events.backlog(
            session, workspace_id=workspace_id, after=batch.start, horizon=batch.horizon
        )
        touched = (
            set()
            .union(*(EVENT_FAMILIES.get(t, frozenset()) for t in types))
            .union(*(WORKSPACE_EVENT_FAMILIES.get(t, frozenset()) for t in types))
        )
        for item in live:
            if Family.ANY in touched or item.families & touched:
                _evaluate(session, item.segment, scope=None, now=now, reason="event", run=run)
        run.events, run.last_event_id, run.full = batch.pending, head.event_id, True
        position = head
    else:
        events = batch.events
        by_family: dict[Family, set[int]] = {}
        wide: set[Family] = set()
        for event in events:
            type_, customer_id, payload = event.type, event.customer_id, event.payload
            wide |= WORKSPACE_EVENT_FAMILIES.get(type_, frozenset())
            changed = EVENT_FAMILIES.get(type_, frozenset())
            ids = {customer_id} if customer_id is not None else set()
            if type_ == DomainEventType.IDENTITY_MERGED and (payload or {}).get("merged_id"):
                ids.add(int(payload["merged_id"]))  # the merged-away customer leaves
            for family in changed:
                by_family.setdefault(family, set()).update(ids)
        for item in live:
            if item.families & wide:
                _evaluate(session, item.segment, scope=None, now=now, reason="event", run=run)
                continue
            scope = set(by_family.get(Family.ANY, set()))
            for family in item.families:
                scope |= by_family.get(family, set())
            if scope:
                _evaluate(session, item.segment, scope=scope, now=now, reason="event", run=run)
        run.events, run.last_event_id = len(events), batch.position.event_id
        run.remaining = batch.pending - len(events)
        position = batch.position
    domain_events.advance(session, consumer=CONSUMER, workspace_id=workspace_id, position=position)
    return run


def sweep(session: Session, *, workspace_id: int, now: datetime | None = None) -> Run:
    """Evaluate in full every segment whose rule changes with time alone ("no order for 60 days" turns
    true on day 61 without any event); records `swept_at`. A scheduler calls this (`siyu segment
    sweep`)."""
    now = now or utcnow()
    _lock(session, workspace_id=workspace_id)
    run = Run()
    for item in _segments_in_order(session, workspace_id=workspace_id):
        if is_time_dependent(item.families):
            _evaluate(session, item.segment, scope=None, now=now, reason="sweep", run=run)
            item.segment.swept_at = now
    return run


def backfill(session: Session, *, segment: Segment, now: datetime | None = None) -> Run:
    """Evaluate a new or changed segment in full, and then the segments that name it."""
    now = now or utcnow()
    _lock(session, workspace_id=segment.workspace_id)
    run = Run()
    session.flush()
    for target in [
        segment,
        *dependents(session, workspace_id=segment.workspace_id, segment_name=segment.name),
    ]:
        _evaluate(session, target, scope=None, now=now, reason="backfill", run=run)
    return run


def close(session: Session, *, segment: Segment, now: datetime | None = None) -> Run:
    """End every stay of a deleted segment (each with its segment.left event); the segments that named
    it then record why they stopped evaluating."""
    now = now or utcnow()
    _lock(session, workspace_id=segment.workspace_id)
    run = Run()
    run.add(segment.id, _apply(session, segment, matches=None, scope=None, now=now, reason="deleted"))
    session.flush()
    for target in dependents(session, workspace_id=segment.workspace_id, segment_name=segment.name):
        _evaluate(session, target, scope=None, now=now, reason="backfill", run=run)
    return run


@dataclass
class Drift:
    segment_id: int
    name: str
    missing: int  # match the rule but are not stored as members
    extra: int  # stored as members but do not match the rule
    repaired: bool
    error: str | None = None


def reconcile(
    session: Session,
    *,
    workspace_id: int,
    repair: bool = False,
    now: datetime | None = None,
    actor_user_id: int | None = None,
) -> list[Drift]:
    """Compare every segment's kept membership with a full evaluation, after catching up with the
    outbox (events not yet handled are lag, not drift); records what differs on the segment and, with
    `repair`, brings the membership to the full evaluation (with its events and an audit row)."""
    now = now or utcnow()
    while process_pending(session, workspace_id=workspace_id, limit=BULK_EVENTS, now=now).remaining:
        pass
    found = []
    for item in _segments_in_order(session, workspace_id=workspace_id):
        segment = item.segment
        try:
            matches = _matches(session, segment, now)
        except RuleError as exc:
            found.append(Drift(segment.id, segment.name, 0, 0, False, str(exc)))
            continue
        is_open = and_(M.segment_id == segment.id, M.left_at.is_(None))
        member = select(M.customer_id).where(is_open, M.customer_id == COLUMNS.customer_id)
        missing = session.scalar(select(func.count()).select_from(matches.where(~member.exists()).subquery()))
        unmatched = ~matches.where(COLUMNS.customer_id == M.customer_id).exists()
        extra = session.scalar(select(func.count()).select_from(M).where(is_open, unmatched))
        segment.reconciled_at, segment.drift_missing, segment.drift_extra = (
            now,
            int(missing or 0),
            int(extra or 0),
        )
        repaired = False
        if repair and (missing or extra):
            _apply(session, segment, matches=matches, scope=None, now=now, reason="repair")
            segment.evaluated_at = now
            repaired = True
            audit.record(
                session,
                workspace_id=workspace_id,
                actor_user_id=actor_user_id,
                action="segment.repaired",
                target_type="segment",
                target_id=segment.id,
                detail={"missing": missing, "extra": extra},
            )
        found.append(Drift(segment.id, segment.name, int(missing or 0), int(extra or 0), repaired))
    return found


# --- reads ------------------------------------------------------------------------------------------


@dataclass
class Status:
    segment: Segment
    members: int
    time_dependent: bool
    lag_seconds: float
    pending_events: int
    lagging: bool


def statuses(
    session: Session,
    *,
    workspace_id: int,
    visible: Select[tuple[int]] | None = None,
    now: datetime | None = None,
) -> list[Status]:
    """Every live segment with its member count (of `visible` customers when given), how far behind it
    is, and whether that is more than LAG_WARNING. Lag: how long the oldest event not yet handled (of
    the types that can change membership) has waited, and for time-dependent rules also how long since the last full evaluation."""
    now = now or utcnow()
    cursor, _ = domain_events.position_of(session, consumer=CONSUMER, workspace_id=workspace_id)
    pending, oldest = session.execute(
        select(func.count(), func.min(DomainEvent.created_at)).where(
            # every event after the cursor, committed or not yet readable: both are lag
            domain_events.committed_after(workspace_id, cursor, None),
            # only what can change a rule's answer (not, e.g., the segment events themselves)
            DomainEvent.type.in_([*EVENT_FAMILIES, *WORKSPACE_EVENT_FAMILIES]),
        )
    ).one()
    event_lag = (now - oldest).total_seconds() if oldest is not None else 0.0
    counted = select(M.segment_id, func.count()).where(M.workspace_id == workspace_id, M.left_at.is_(None))
    if visible is not None:
        counted = counted.where(M.customer_id.in_(visible))
    counts = dict(session.execute(counted.group_by(M.segment_id)).tuples().all())
    found = []
    for item in sorted(_segments_in_order(session, workspace_id=workspace_id), key=lambda i: i.segment.name):
        segment = item.segment
        timed = is_time_dependent(item.families)
        lag = event_lag
        if timed:
            last = max(
                t for t in (segment.swept_at, segment.evaluated_at, segment.created_at) if t is not None
            )
            lag = max(lag, (now - last).total_seconds())
        found.append(
            Status(
                segment=segment,
                members=int(counts.get(segment.id, 0)),
                time_dependent=timed,
                lag_seconds=max(0.0, lag),
                pending_events=int(pending),
                lagging=lag > LAG_WARNING.total_seconds(),
            )
        )
    return found


def member_count(session: Session, *, segment: Segment, visible: Select[tuple[int]] | None = None) -> int:
    query = select(func.count()).where(M.segment_id == segment.id, M.left_at.is_(None))
    if visible is not None:
        query = query.where(M.customer_id.in_(visible))
    return int(session.scalar(query) or 0)


def members_over_time(
    session: Session, *, segment: Segment, days: int, now: datetime | None = None
) -> list[tuple[datetime, int]]:
    """Members at the end of each of the last `days` days of the workspace calendar (the last point is
    now), read from the stays in one statement."""
    now = now or utcnow()
    zone = ZoneInfo(workspaces.get_workspace(session, workspace_id=segment.workspace_id).timezone)
    today = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    points = [today - timedelta(days=back) + timedelta(days=1) for back in range(days - 1, 0, -1)] + [now]
    points = [p.astimezone(now.tzinfo) for p in points]
    start = points[0]
    sums = [
        func.sum(case((and_(M.entered_at <= p, or_(M.left_at.is_(None), M.left_at > p)), 1), else_=0))
        for p in points
    ]
    row = session.execute(
        select(*sums).where(M.segment_id == segment.id, or_(M.left_at.is_(None), M.left_at > start))
    ).one()
    return [(p, int(v or 0)) for p, v in zip(points, row, strict=True)]


def member_page(
    session: Session,
    *,
    segment: Segment,
    visible: Select[tuple[int]],
    before_id: int | None,
    limit: int,
) -> tuple[list[int], int | None]:
    """Ids of current members, highest id first, after `before_id`; and the id to continue from."""
    query = select(M.customer_id).where(
        M.segment_id == segment.id, M.left_at.is_(None), M.customer_id.in_(visible)
    )
    if before_id is not None:
        query = query.where(M.customer_id < before_id)
    ids = list(session.scalars(query.order_by(M.customer_id.desc()).limit(limit + 1)))
    more = len(ids) > limit
    ids = ids[:limit]
    return ids, (ids[-1] if more and ids else None)


def current_members(session: Session, *, segment: Segment) -> set[int]:
    """Every current member's id (tests and small tools; pages use `member_page`)."""
    return set(session.scalars(select(M.customer_id).where(M.segment_id == segment.id, M.left_at.is_(None))))
