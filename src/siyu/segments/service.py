"""Segment verbs: read a rule in either form, count and sample the customers it matches, explain its SQL,
and save, change and delete named segments (each write with its audit row and domain event).

Counting never loads customers: the rule runs as one statement inside the database. Staff count and see
only their own customers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import CompileError
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events, schedule
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.customers.schemas import CustomerSummary
from siyu.segments import compiler, fields, membership
from siyu.segments.models import Segment, SegmentMembership
from siyu.segments.parser import parse
from siyu.segments.rules import (
    HasTag,
    InSegment,
    Rule,
    RuleError,
    rule_from_json,
    rule_to_json,
    to_text,
    walk,
)
from siyu.segments.schemas import (
    CountPoint,
    MembersPage,
    Processing,
    RuleCount,
    RuleExplain,
    RuleSample,
    RunResult,
    ScheduledRun,
    SegmentDrift,
    SegmentStatus,
)
from siyu.tags import service as tags
from siyu.tags.schemas import BulkTagResult

RuleSource = str | dict[str, Any] | Rule
NAME_MAX = 200


def read_rule(source: RuleSource) -> Rule:
    """A rule from its text form, its canonical JSON or a tree, checked for everything that needs no
    database (names, operators, values); a RuleError says where."""
    if isinstance(source, str):
        rule = parse(source)
    elif isinstance(source, dict):
        rule = rule_from_json(source)
    else:
        rule = source
    fields.check(rule)
    return rule


def _members(
    session: Session, *, actor: Actor, rule: Rule, now: datetime, within_segment: str | None = None
) -> Select[tuple[int]]:
    statement = compiler.compile_rule(
        session, workspace_id=actor.workspace_id, rule=rule, now=now, within_segment=within_segment
    )
    if actor.sees_only_own_customers:
        statement = statement.where(
            customers.RULE_COLUMNS.customer_id.in_(customers.visible_customers(actor))
        )
    return statement


def count_segment_rule(
    session: Session, *, actor: Actor, rule: RuleSource, now: datetime | None = None
) -> RuleCount:
    """How many customers the rule matches at `now` (default: now), counted inside the database."""
    actor.require(Permission.READ)
    tree = read_rule(rule)
    now = now or utcnow()
    members = _members(session, actor=actor, rule=tree, now=now).subquery()
    count = session.scalar(select(func.count()).select_from(members)) or 0
    return RuleCount(count=count, text=to_text(tree), warnings=fields.warnings(tree), now=now)


def member_ids(
    session: Session, *, actor: Actor, rule: RuleSource, now: datetime | None = None, limit: int | None = None
) -> list[int]:
    """The ids of the customers the rule matches, newest customer first (at most `limit`)."""
    actor.require(Permission.READ)
    statement = _members(session, actor=actor, rule=read_rule(rule), now=now or utcnow())
    statement = statement.order_by(customers.RULE_COLUMNS.customer_id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement))


def sample_members(
    session: Session, *, actor: Actor, rule: RuleSource, now: datetime | None = None, limit: int = 20
) -> RuleSample:
    """The count and up to `limit` matching customers (newest first), as list rows — what the segment
    builder shows while a rule is edited."""
    now = now or utcnow()
    counted = count_segment_rule(session, actor=actor, rule=rule, now=now)
    ids = member_ids(session, actor=actor, rule=rule, now=now, limit=max(0, min(limit, 200)))
    return RuleSample(
        **counted.model_dump(), members=customers.customer_summaries(session, actor=actor, customer_ids=ids)
    )


def explain(session: Session, *, actor: Actor, rule: RuleSource, now: datetime | None = None) -> RuleExplain:
    """The rule's text and JSON forms and the SQL it runs as on this database, parameters inlined."""
    actor.require(Permission.READ)
    tree = read_rule(rule)
    now = now or utcnow()
    statement = _members(session, actor=actor, rule=tree, now=now)
    dialect = session.get_bind().dialect
    try:
        text = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except (CompileError, NotImplementedError):  # a value without a literal form: show the parameters
        compiled = statement.compile(dialect=dialect)
        text = f"{compiled}\n-- parameters: {compiled.params!r}"
    return RuleExplain(
        text=to_text(tree),
        rule=rule_to_json(tree),
        dialect=dialect.name,
        sql=text,
        warnings=fields.warnings(tree),
        now=now,
    )


def tag_members(
    session: Session,
    *,
    actor: Actor,
    rule: RuleSource,
    tag_id: int,
    now: datetime | None = None,
    source_ref: str | None = None,
) -> BulkTagResult:
    """Give every customer the rule matches now a tag, by hand (source `manual`), in one transaction; the
    tag is not kept current afterwards (that is a rule tag's job)."""
    actor.require(Permission.WRITE)
    ids = member_ids(session, actor=actor, rule=rule, now=now)
    return tags.tag_customers(session, actor=actor, tag_id=tag_id, customer_ids=ids, source_ref=source_ref)


# --- saved segments ---------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationFailed("the segment name is empty", where="name", hint="e.g. 高价值沉睡")
    if len(cleaned) > NAME_MAX:
        raise ValidationFailed(f"the segment name is longer than {NAME_MAX} characters", where="name")
    return cleaned


def get_segment(
    session: Session, *, workspace_id: int, segment_id: int, include_deleted: bool = False
) -> Segment:
    segment = session.get(Segment, segment_id)
    if (
        segment is None
        or segment.workspace_id != workspace_id
        or (segment.deleted_at and not include_deleted)
    ):
        raise NotFound(f"segment {segment_id} does not exist in this workspace", where="segment_id")
    return segment


def get_segment_by_name(session: Session, *, workspace_id: int, name: str) -> Segment:
    segment = session.scalar(
        select(Segment).where(Segment.workspace_id == workspace_id, Segment.name == name)
    )
    if segment is None or segment.deleted_at is not None:
        raise NotFound(f"no segment is called {name!r} in this workspace", where="name")
    return segment


def list_segments(session: Session, *, workspace_id: int, include_deleted: bool = False) -> list[Segment]:
    """The workspace's segments by name."""
    query = select(Segment).where(Segment.workspace_id == workspace_id)
    if not include_deleted:
        query = query.where(Segment.deleted_at.is_(None))
    return list(session.scalars(query.order_by(Segment.name)))


def _checked(
    session: Session, *, actor: Actor, rule: RuleSource, name: str, accept_warnings: bool
) -> tuple[Rule, list[str]]:
    """The rule, compiled once against the workspace (tags, channels, segments it names must exist)."""
    tree = read_rule(rule)
    compiler.compile_rule(
        session, workspace_id=actor.workspace_id, rule=tree, now=utcnow(), within_segment=name
    )
    found = fields.warnings(tree)
    if found and not accept_warnings:
        raise RuleError(
            found[0], hint="narrow the rule, or save it anyway with accept_warnings (--accept-warnings)"
        )
    return tree, found


def create_segment(
    session: Session, *, actor: Actor, name: str, rule: RuleSource, accept_warnings: bool = False
) -> Segment:
    """Save a named rule; emits segment.created. A rule that matches everyone or no one is refused unless
    `accept_warnings`."""
    actor.require(Permission.WRITE)
    name = _clean_name(name)
    taken = session.scalar(
        select(Segment).where(Segment.workspace_id == actor.workspace_id, Segment.name == name)
    )
    if taken is not None:
        raise Conflict(
            f"a segment called {name!r} exists already" + (" (deleted)" if taken.deleted_at else ""),
            where="name",
            hint="pick another name" if taken.deleted_at else f"edit segment {taken.id} instead",
        )
    tree, found = _checked(session, actor=actor, rule=rule, name=name, accept_warnings=accept_warnings)
    now = utcnow()
    segment = Segment(
        workspace_id=actor.workspace_id,
        name=name,
        rule=rule_to_json(tree),
        rule_text=to_text(tree),
        created_by_user_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(segment)
    session.flush()
    _record(
        session,
        actor=actor,
        segment=segment,
        type_=DomainEventType.SEGMENT_CREATED,
        detail={"warnings": found},
    )
    membership.backfill(session, segment=segment, now=now)
    return segment


def update_segment(
    session: Session,
    *,
    actor: Actor,
    segment_id: int,
    name: str | None = None,
    rule: RuleSource | None = None,
    accept_warnings: bool = False,
) -> Segment:
    """Rename a segment and/or change its rule; emits segment.updated with what changed."""
    actor.require(Permission.WRITE)
    segment = get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    changed: dict[str, Any] = {}
    if name is not None and _clean_name(name) != segment.name:
        new_name = _clean_name(name)
        if session.scalar(
            select(Segment.id).where(Segment.workspace_id == actor.workspace_id, Segment.name == new_name)
        ):
            raise Conflict(f"a segment called {new_name!r} exists already", where="name")
        referring = _referring(session, workspace_id=actor.workspace_id, segment=segment)
        if referring:
            # rules name segments by name: renaming would leave theirs naming nothing
            raise Conflict(
                f"segment {segment.name!r} is named in the rules of " + ", ".join(repr(n) for n in referring),
                where="name",
                hint="change those rules first, or keep the name",
            )
        changed["name"] = {"from": segment.name, "to": new_name}
        segment.name = new_name
    if rule is not None:
        tree, found = _checked(
            session, actor=actor, rule=rule, name=segment.name, accept_warnings=accept_warnings
        )
        if rule_to_json(tree) != segment.rule:
            if segment.tag_id is not None:
                _check_rule_tag(session, workspace_id=actor.workspace_id, rule=tree, tag_id=segment.tag_id)
            changed["rule"] = {"from": segment.rule_text, "to": to_text(tree), "warnings": found}
            segment.rule, segment.rule_text = rule_to_json(tree), to_text(tree)
            segment.version += 1
            changed["version"] = segment.version
    if changed:
        segment.updated_at = utcnow()
        _record(session, actor=actor, segment=segment, type_=DomainEventType.SEGMENT_UPDATED, detail=changed)
        if "rule" in changed:
            membership.backfill(session, segment=segment, now=segment.updated_at)
    return segment


def delete_segment(session: Session, *, actor: Actor, segment_id: int) -> Segment:
    """Mark a segment deleted (the row and its name stay); emits segment.deleted. Rules that name it then
    fail, saying so."""
    actor.require(Permission.WRITE)
    segment = get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    segment.deleted_at = segment.updated_at = utcnow()
    referring = _referring(session, workspace_id=actor.workspace_id, segment=segment)
    _record(
        session,
        actor=actor,
        segment=segment,
        type_=DomainEventType.SEGMENT_DELETED,
        detail={"referred_to_by": referring},
    )
    membership.close(session, segment=segment, now=segment.deleted_at)
    return segment


def _referring(session: Session, *, workspace_id: int, segment: Segment) -> list[str]:
    """The names of the live segments whose rules name this one."""
    return [
        other.name
        for other in list_segments(session, workspace_id=workspace_id)
        if other.id != segment.id and _names_segment(other.rule, segment.name)
    ]


def _names_segment(document: dict[str, Any], name: str) -> bool:
    if document.get("type") == "segment":
        return bool(document.get("segment") == name)
    children = document.get("rules") or ([document["rule"]] if "rule" in document else [])
    return any(_names_segment(child, name) for child in children)


def _record(
    session: Session, *, actor: Actor, segment: Segment, type_: DomainEventType, detail: dict[str, Any]
) -> None:
    payload = {"segment_id": segment.id, "name": segment.name, **detail}
    domain_events.record(
        session, workspace_id=actor.workspace_id, type=type_, customer_id=None, payload=payload
    )
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action=str(type_),
        target_type="segment",
        target_id=segment.id,
        detail=payload,
    )


# --- live membership --------------------------------------------------------------------------------


def _run_result(run: membership.Run) -> RunResult:
    return RunResult(
        events=run.events,
        last_event_id=run.last_event_id,
        remaining=run.remaining,
        full=run.full,
        segments=len(run.changes) + len(set(run.errors) - set(run.changes)),
        entered=sum(c.entered for c in run.changes.values()),
        left=sum(c.left for c in run.changes.values()),
        errors=run.errors,
    )


def process_pending(
    session: Session, *, workspace_id: int, limit: int = 1000, now: datetime | None = None
) -> RunResult:
    """Bring membership current with the next `limit` domain events of the workspace (a system verb: the
    scheduler, `siyu segment process` and imports call it)."""
    if limit < 1:
        raise ValidationFailed("limit must be at least 1", where="limit")
    return _run_result(membership.process_pending(session, workspace_id=workspace_id, limit=limit, now=now))


def sweep(session: Session, *, workspace_id: int, now: datetime | None = None) -> RunResult:
    """Evaluate in full the segments whose rules change with time alone (a system verb for the
    scheduler and `siyu segment sweep`)."""
    return _run_result(membership.sweep(session, workspace_id=workspace_id, now=now))


def reconcile(
    session: Session,
    *,
    workspace_id: int,
    repair: bool = False,
    now: datetime | None = None,
    actor_user_id: int | None = None,
) -> list[SegmentDrift]:
    """Compare every segment's kept membership with a full evaluation; with `repair`, fix what differs."""
    return [
        SegmentDrift(**vars(d))
        for d in membership.reconcile(
            session, workspace_id=workspace_id, repair=repair, now=now, actor_user_id=actor_user_id
        )
    ]


# the worker's jobs for segments (reach.tasks.SCHEDULE names them; segments.tasks holds them)
JOBS = {
    "process": "siyu.segments.tasks:process_events",
    "sweep": "siyu.segments.tasks:sweep",
    "reconcile": "siyu.segments.tasks:reconcile",
}
PROCESSING_STALE = timedelta(minutes=1)


def processing(session: Session, *, actor: Actor, now: datetime | None = None) -> Processing:
    """The worker's segment jobs of the actor's workspace, and whether event processing is current."""
    actor.require(Permission.READ)
    now = now or utcnow()
    found = {
        s.name: s
        for s in schedule.statuses(session, workspace_id=actor.workspace_id)
        if s.name in JOBS.values()
    }
    runs = []
    for job, name in JOBS.items():
        s = found.get(name)
        runs.append(
            ScheduledRun(
                job=job,
                schedule=s.schedule if s else "",
                last_started_at=s.last_started_at if s else None,
                last_status=s.last_status if s else None,
                last_result=s.last_result if s else None,
                last_error=s.last_error if s and s.failures else None,
                next_run_at=s.next_run_at if s else None,
            )
        )
    process = found.get(JOBS["process"])
    current = bool(
        process is not None
        and process.last_started_at is not None
        and process.failures == 0
        and now - process.last_started_at <= PROCESSING_STALE
    )
    return Processing(current=current, runs=runs)


def _visible(actor: Actor) -> Select[tuple[int]] | None:
    return customers.visible_customers(actor) if actor.sees_only_own_customers else None


def _state(status: membership.Status) -> str:
    segment = status.segment
    if segment.evaluation_error:
        return "error"
    if segment.drift_missing or segment.drift_extra:
        return "drift"
    return "lagging" if status.lagging else "current"


def segment_statuses(session: Session, *, actor: Actor, now: datetime | None = None) -> list[SegmentStatus]:
    """Every segment with its member count (staff: of their own customers), lag and drift."""
    actor.require(Permission.READ)
    return [
        SegmentStatus(
            id=s.segment.id,
            name=s.segment.name,
            rule_text=s.segment.rule_text,
            version=s.segment.version,
            tag_id=s.segment.tag_id,
            members=s.members,
            time_dependent=s.time_dependent,
            lag_seconds=s.lag_seconds,
            pending_events=s.pending_events,
            evaluated_at=s.segment.evaluated_at,
            swept_at=s.segment.swept_at,
            reconciled_at=s.segment.reconciled_at,
            drift_missing=s.segment.drift_missing,
            drift_extra=s.segment.drift_extra,
            evaluation_error=s.segment.evaluation_error,
            state=_state(s),
        )
        for s in membership.statuses(
            session, workspace_id=actor.workspace_id, visible=_visible(actor), now=now
        )
    ]


def segment_status(
    session: Session, *, actor: Actor, segment_id: int, now: datetime | None = None
) -> SegmentStatus:
    segment = get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    return next(s for s in segment_statuses(session, actor=actor, now=now) if s.id == segment.id)


def members_over_time(
    session: Session, *, actor: Actor, segment_id: int, days: int = 90, now: datetime | None = None
) -> list[CountPoint]:
    """Members at the end of each of the last `days` days (workspace calendar), from the stays."""
    actor.require(Permission.READ)
    if not 1 <= days <= 730:
        raise ValidationFailed("days must be between 1 and 730", where="days")
    segment = get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    return [
        CountPoint(at=at, members=n)
        for at, n in membership.members_over_time(session, segment=segment, days=days, now=now)
    ]


def segment_members(
    session: Session, *, actor: Actor, segment_id: int, cursor: str | None = None, limit: int = 50
) -> MembersPage:
    """The segment's current members (those this actor may see), newest customer first, a page at a time."""
    actor.require(Permission.READ)
    segment = get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    before = int(customers.decode_cursor(cursor, arity=1)[0]) if cursor else None
    ids, next_id = membership.member_page(
        session,
        segment=segment,
        visible=customers.visible_customers(actor),
        before_id=before,
        limit=customers.clamp_limit(limit),
    )
    return MembersPage(
        members=customers.customer_summaries(session, actor=actor, customer_ids=ids),
        next_cursor=customers.encode_cursor(next_id) if next_id is not None else None,
    )


def _tag_label(session: Session, *, workspace_id: int, tag_id: int) -> tuple[str, str]:
    for id_, group, name in tags.tag_names(session, workspace_id=workspace_id):
        if id_ == tag_id:
            return group, name
    raise NotFound(f"tag {tag_id} does not exist in this workspace", where="tag_id")


def _check_rule_tag(session: Session, *, workspace_id: int, rule: Rule, tag_id: int) -> None:
    """A rule may not read the tag it gives: membership would depend on itself."""
    group, name = _tag_label(session, workspace_id=workspace_id, tag_id=tag_id)
    documents = {s.name: s.rule for s in list_segments(session, workspace_id=workspace_id)}
    pending: list[Rule] = [rule]
    seen: set[str] = set()
    while pending:
        for node in walk(pending.pop()):
            if isinstance(node, HasTag) and node.tag.strip() in (name, f"{group}/{name}"):
                raise Conflict(
                    f"the rule reads tag {group}/{name}, the tag it would give",
                    where="tag_id",
                    hint="give another tag, or take tag(...) out of the rule",
                )
            if isinstance(node, InSegment) and node.segment in documents and node.segment not in seen:
                seen.add(node.segment)
                pending.append(rule_from_json(documents[node.segment]))


def set_rule_tag(session: Session, *, actor: Actor, segment_id: int, tag_id: int | None) -> Segment:
    """Make a segment's rule give a tag (source "rule") to its members and take it back when they leave,
    or stop doing so (tag_id None: the tags it gave are taken back). Tags given by hand stay."""
    actor.require(Permission.WRITE)
    segment = get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    if tag_id == segment.tag_id:
        return segment
    if tag_id is not None:
        _check_rule_tag(session, workspace_id=actor.workspace_id, rule=read_rule(segment.rule), tag_id=tag_id)
    current = sorted(membership.current_members(session, segment=segment))
    ref = membership.rule_tag_ref(segment)
    if segment.tag_id is not None:
        tags.sync_rule_tag(
            session,
            workspace_id=actor.workspace_id,
            tag_id=segment.tag_id,
            source_ref=ref,
            add=[],
            remove=current,
        )
    if tag_id is not None:
        tags.sync_rule_tag(
            session, workspace_id=actor.workspace_id, tag_id=tag_id, source_ref=ref, add=current, remove=[]
        )
    detail = {"rule_tag": {"from": segment.tag_id, "to": tag_id}}
    segment.tag_id = tag_id
    segment.updated_at = utcnow()
    _record(session, actor=actor, segment=segment, type_=DomainEventType.SEGMENT_UPDATED, detail=detail)
    return segment


def current_members(*, workspace_id: int, segment_id: int) -> Select[tuple[int]]:
    """`customer_id` of the segment's current members (its open stays), for the analytical domains to
    filter by in SQL."""
    return select(SegmentMembership.customer_id.label("customer_id")).where(
        SegmentMembership.workspace_id == workspace_id,
        SegmentMembership.segment_id == segment_id,
        SegmentMembership.left_at.is_(None),
    )


# --- references, the builder's catalogue, member export ---------------------------------------------


def tag_references(session: Session, *, workspace_id: int, tag_ids: list[int]) -> list[str]:
    """The names of the live segments whose rules read one of these tags (by name or group/name) or that
    give one as their rule tag: renaming or deleting such a tag would break them."""
    by_tag = references_by_tag(session, workspace_id=workspace_id)
    return sorted({name for tag_id in tag_ids for name in by_tag.get(tag_id, [])})


def references_by_tag(session: Session, *, workspace_id: int) -> dict[int, list[str]]:
    """For every tag some live segment names (or gives as its rule tag), those segments' names: two
    statements, whatever the number of tags (the tag page lists them all)."""
    ids_of: dict[str, set[int]] = {}
    for id_, group, name in tags.tag_names(session, workspace_id=workspace_id):
        for label in (name, f"{group}/{name}"):
            ids_of.setdefault(label, set()).add(id_)
    found: dict[int, set[str]] = {}
    for segment in list_segments(session, workspace_id=workspace_id):
        named = {tag_id for label in _tag_labels(segment.rule) for tag_id in ids_of.get(label, ())}
        if segment.tag_id is not None:
            named.add(segment.tag_id)
        for tag_id in named:
            found.setdefault(tag_id, set()).add(segment.name)
    return {tag_id: sorted(names) for tag_id, names in found.items()}


def _tag_labels(document: dict[str, Any]) -> set[str]:
    if document.get("type") == "tag":
        return {str(document.get("tag", "")).strip()}
    children = document.get("rules") or ([document["rule"]] if "rule" in document else [])
    return {label for child in children for label in _tag_labels(child)}


def rule_catalog(session: Session, *, actor: Actor) -> dict[str, Any]:
    """What the segment builder offers: every field with its kind, operators and choices; the order and
    event conditions with their filters and measures; the workspace's tags, segments and identity kinds;
    consent channels and purposes."""
    actor.require(Permission.READ)
    return {
        "fields": [
            {
                "name": f.name,
                "kind": f.kind.value,
                "ops": list(fields.ops_of(f.kind)),
                "choices": list(f.choices),
            }
            for f in fields.FIELDS.values()
        ],
        "attribute_ops": list(fields.ops_of(fields.Kind.ATTRIBUTE)),
        "measure_ops": list(fields.MEASURE_OPS),
        "orders": {"filters": ["category", "channel", "store", "within"], "measures": ["count", "sum"]},
        "events": {"filters": ["event_type", "within"], "measures": ["count"]},
        "tags": [
            f"{group}/{name}" for _, group, name in tags.tag_names(session, workspace_id=actor.workspace_id)
        ],
        "segments": [s.name for s in list_segments(session, workspace_id=actor.workspace_id)],
        "identity_kinds": sorted(
            set(customers.BUILTIN_IDENTITY_KINDS)
            | customers.identity_kinds_in_use(session, workspace_id=actor.workspace_id)
        ),
        "consent_channels": list(customers.CONTACT_CHANNELS),
        "consent_purposes": list(customers.CONSENT_PURPOSES),
    }


EXPORT_FORMATS = ("csv", "xlsx")
EXPORT_BATCH = 500


def record_export(session: Session, *, actor: Actor, segment_id: int, file_format: str) -> SegmentStatus:
    """Audit a download of a segment's current members (`segment.exported`, with how many and the
    format) and answer the segment's status; needs `export`, as every list of people does."""
    actor.require(Permission.EXPORT)
    if file_format not in EXPORT_FORMATS:
        raise ValidationFailed(f"unknown export format {file_format!r}", where="format", hint="csv or xlsx")
    status = segment_status(session, actor=actor, segment_id=segment_id)
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="segment.exported",
        target_type="segment",
        target_id=segment_id,
        detail={"name": status.name, "rows": status.members, "format": file_format},
    )
    return status


def member_batches(
    session: Session, *, actor: Actor, segment_id: int, batch: int = EXPORT_BATCH
) -> Iterator[list[CustomerSummary]]:
    """The segment's current members that this actor may see, as list rows (phones masked for staff), a
    batch at a time by keyset, so that a large segment is never held in memory."""
    actor.require(Permission.READ)
    segment = get_segment(session, workspace_id=actor.workspace_id, segment_id=segment_id)
    visible = customers.visible_customers(actor)
    before: int | None = None
    while True:
        ids, next_id = membership.member_page(
            session, segment=segment, visible=visible, before_id=before, limit=batch
        )
        if ids:
            yield customers.customer_summaries(session, actor=actor, customer_ids=ids)
        if next_id is None:
            return
        before = next_id


def untag_members(
    session: Session, *, actor: Actor, rule: RuleSource, tag_id: int, now: datetime | None = None
) -> BulkTagResult:
    """Take a tag off every customer the rule matches now, in one transaction."""
    actor.require(Permission.WRITE)
    ids = member_ids(session, actor=actor, rule=rule, now=now)
    return tags.untag_customers(session, actor=actor, tag_id=tag_id, customer_ids=ids)


def rule_matches(
    session: Session,
    *,
    workspace_id: int,
    rule: RuleSource,
    customer_ids: list[int],
    now: datetime | None = None,
) -> set[int]:
    """Which of `customer_ids` the rule matches at `now`: the rule runs inside the database for those
    customers only (a journey's condition step asks this for one customer)."""
    tree = read_rule(rule)
    statement = compiler.compile_rule(session, workspace_id=workspace_id, rule=tree, now=now or utcnow())
    return set(session.scalars(statement.where(customers.RULE_COLUMNS.customer_id.in_(customer_ids))))
