"""Tag verbs: define tag groups and tags, tag and untag one customer or many (by id or by an imported
list of identity values), and read a customer's tags.

Every write needs the `write` permission, reaches only customers the actor may see, and lands in the
caller's transaction with its audit row and one `tag.added` / `tag.removed` domain event per customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.tags.models import CustomerTag, Tag, TagGroup, TagSource
from siyu.tags.schemas import BulkTagResult, CustomerTagOut, TagGroupOut, TagOut

NAME_MAX = 100
_CHUNK = 2000


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _clean_name(name: str, *, where: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationFailed("the name is empty", where=where, hint="give a name, e.g. VIP")
    if len(cleaned) > NAME_MAX:
        raise ValidationFailed(f"the name is longer than {NAME_MAX} characters", where=where)
    if "/" in cleaned:
        # rules name a tag as "group/name": a slash inside either would make that ambiguous
        raise ValidationFailed(
            f"{cleaned!r} contains '/'", where=where, hint="use another separator, e.g. '-'"
        )
    return cleaned


def _source(source: TagSource | str) -> TagSource:
    try:
        return TagSource(source)
    except ValueError:
        raise ValidationFailed(
            f"unknown tag source {source!r}",
            where="source",
            hint="one of " + ", ".join(s.value for s in TagSource),
        ) from None


# --- definitions ------------------------------------------------------------------------------------


def list_groups(session: Session, *, workspace_id: int) -> list[TagGroupOut]:
    """Every tag group of the workspace with its tags, by name."""
    groups = list(
        session.scalars(select(TagGroup).where(TagGroup.workspace_id == workspace_id).order_by(TagGroup.name))
    )
    tags: dict[int, list[TagOut]] = {g.id: [] for g in groups}
    for tag in session.scalars(select(Tag).where(Tag.workspace_id == workspace_id).order_by(Tag.name)):
        tags[tag.group_id].append(TagOut.model_validate(tag))
    return [TagGroupOut(id=g.id, name=g.name, created_at=g.created_at, tags=tags[g.id]) for g in groups]


def get_group(session: Session, *, workspace_id: int, group_id: int) -> TagGroup:
    group = session.get(TagGroup, group_id)
    if group is None or group.workspace_id != workspace_id:
        raise NotFound(f"tag group {group_id} does not exist in this workspace", where="group_id")
    return group


def get_tag(session: Session, *, workspace_id: int, tag_id: int) -> Tag:
    tag = session.get(Tag, tag_id)
    if tag is None or tag.workspace_id != workspace_id:
        raise NotFound(f"tag {tag_id} does not exist in this workspace", where="tag_id")
    return tag


def create_group(session: Session, *, actor: Actor, name: str) -> TagGroup:
    """A new tag group; its name must not name another group of the workspace."""
    actor.require(Permission.WRITE)
    name = _clean_name(name, where="name")
    taken = session.scalar(
        select(TagGroup.id).where(TagGroup.workspace_id == actor.workspace_id, TagGroup.name == name)
    )
    if taken is not None:
        raise Conflict(f"tag group {name!r} exists already", where="name", hint=f"add tags to group {taken}")
    group = TagGroup(workspace_id=actor.workspace_id, name=name, created_at=utcnow())
    session.add(group)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="tag_group.created",
        target_type="tag_group",
        target_id=group.id,
        detail={"name": name},
    )
    return group


def create_tag(session: Session, *, actor: Actor, group_id: int, name: str) -> Tag:
    """A new tag in a group; its name must not name another tag of that group."""
    actor.require(Permission.WRITE)
    group = get_group(session, workspace_id=actor.workspace_id, group_id=group_id)
    name = _clean_name(name, where="name")
    if session.scalar(select(Tag.id).where(Tag.group_id == group.id, Tag.name == name)) is not None:
        raise Conflict(f"tag {name!r} exists already in group {group.name!r}", where="name")
    tag = Tag(workspace_id=actor.workspace_id, group_id=group.id, name=name, created_at=utcnow())
    session.add(tag)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="tag.created",
        target_type="tag",
        target_id=tag.id,
        detail={"group": group.name, "name": name},
    )
    return tag


def tag_names(session: Session, *, workspace_id: int) -> list[tuple[int, str, str]]:
    """(tag id, group name, tag name) of every tag of the workspace (for rules that name tags)."""
    rows = session.execute(
        select(Tag.id, TagGroup.name, Tag.name)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(Tag.workspace_id == workspace_id)
        .order_by(TagGroup.name, Tag.name)
    )
    return [(id_, group, name) for id_, group, name in rows]


def customer_ids_with_tags(workspace_id: int, tag_ids: Iterable[int]) -> Select[tuple[int]]:
    """The ids of customers carrying any of these tags, as a subquery for rules (never NULL)."""
    return select(CustomerTag.customer_id).where(
        CustomerTag.workspace_id == workspace_id, CustomerTag.tag_id.in_(sorted(set(tag_ids)))
    )


# --- a customer's tags ------------------------------------------------------------------------------


def customer_tags(session: Session, *, actor: Actor, customer_id: int) -> list[CustomerTagOut]:
    """The tags one customer carries, by group and name."""
    actor.require(Permission.READ)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    return tags_of_customer(session, workspace_id=actor.workspace_id, customer_id=customer_id)


def tags_of_customer(session: Session, *, workspace_id: int, customer_id: int) -> list[CustomerTagOut]:
    """The tags one customer carries; the caller has checked the customer may be seen (PIPL export)."""
    rows = session.execute(
        select(CustomerTag, TagGroup.name, Tag.name)
        .join(Tag, Tag.id == CustomerTag.tag_id)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(CustomerTag.workspace_id == workspace_id, CustomerTag.customer_id == customer_id)
        .order_by(TagGroup.name, Tag.name)
    )
    return [
        CustomerTagOut(
            tag_id=ct.tag_id,
            group=group,
            name=name,
            source=TagSource(ct.source),
            source_ref=ct.source_ref,
            actor_user_id=ct.actor_user_id,
            tagged_at=ct.tagged_at,
        )
        for ct, group, name in rows
    ]


def _carrying(session: Session, *, tag_id: int, customer_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(customer_ids):
        found.update(
            session.scalars(
                select(CustomerTag.customer_id).where(
                    CustomerTag.tag_id == tag_id, CustomerTag.customer_id.in_(chunk)
                )
            )
        )
    return found


def _event_payload(session: Session, tag: Tag, source: TagSource) -> dict[str, Any]:
    group = session.get(TagGroup, tag.group_id)
    return {"tag_id": tag.id, "group": group.name if group else "", "tag": tag.name, "source": source.value}


def _add(
    session: Session,
    *,
    actor: Actor,
    tag: Tag,
    customer_ids: set[int],
    source: TagSource,
    source_ref: str | None,
) -> int:
    ids = sorted(customer_ids - _carrying(session, tag_id=tag.id, customer_ids=sorted(customer_ids)))
    if not ids:
        return 0
    now = utcnow()
    session.execute(
        insert(CustomerTag),
        [
            {
                "customer_id": customer_id,
                "tag_id": tag.id,
                "workspace_id": actor.workspace_id,
                "source": source.value,
                "source_ref": source_ref,
                "actor_user_id": actor.user_id,
                "tagged_at": now,
            }
            for customer_id in ids
        ],
    )
    payload = {**_event_payload(session, tag, source), "source_ref": source_ref}
    domain_events.record_many(
        session,
        (
            {
                "workspace_id": actor.workspace_id,
                "type": DomainEventType.TAG_ADDED,
                "customer_id": customer_id,
                "payload": payload,
                "occurred_at": now,
            }
            for customer_id in ids
        ),
    )
    return len(ids)


def _remove(session: Session, *, actor: Actor, tag: Tag, customer_ids: set[int]) -> int:
    rows = {
        customer_id: source
        for chunk in _chunks(sorted(customer_ids))
        for customer_id, source in session.execute(
            select(CustomerTag.customer_id, CustomerTag.source).where(
                CustomerTag.tag_id == tag.id, CustomerTag.customer_id.in_(chunk)
            )
        )
    }
    if not rows:
        return 0
    for chunk in _chunks(sorted(rows)):
        session.execute(
            delete(CustomerTag).where(CustomerTag.tag_id == tag.id, CustomerTag.customer_id.in_(chunk))
        )
    now = utcnow()
    base = _event_payload(session, tag, TagSource.MANUAL)
    domain_events.record_many(
        session,
        (
            {
                "workspace_id": actor.workspace_id,
                "type": DomainEventType.TAG_REMOVED,
                "customer_id": customer_id,
                # the source the removed tag had, so that a rule tag removed by hand can be told apart
                "payload": {**base, "source": source},
                "occurred_at": now,
            }
            for customer_id, source in sorted(rows.items())
        ),
    )
    return len(rows)


def _audit(
    session: Session, *, actor: Actor, action: str, tag: Tag, detail: dict[str, Any], customer_id: int | None
) -> None:
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action=action,
        target_type="customer" if customer_id is not None else "tag",
        target_id=customer_id if customer_id is not None else tag.id,
        detail={"tag_id": tag.id, **detail},
    )


def tag_customer(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    tag_id: int,
    source: TagSource | str = TagSource.MANUAL,
    source_ref: str | None = None,
) -> bool:
    """Give one customer a tag; False (and nothing written) if they carry it already."""
    actor.require(Permission.WRITE)
    source = _source(source)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    tag = get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    added = _add(
        session, actor=actor, tag=tag, customer_ids={customer_id}, source=source, source_ref=source_ref
    )
    if added:
        _audit(
            session,
            actor=actor,
            action="tag.added",
            tag=tag,
            detail={"source": source.value},
            customer_id=customer_id,
        )
    return bool(added)


def untag_customer(session: Session, *, actor: Actor, customer_id: int, tag_id: int) -> bool:
    """Take a tag off one customer; False (and nothing written) if they did not carry it."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    tag = get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    removed = _remove(session, actor=actor, tag=tag, customer_ids={customer_id})
    if removed:
        _audit(session, actor=actor, action="tag.removed", tag=tag, detail={}, customer_id=customer_id)
    return bool(removed)


def tag_customers(
    session: Session,
    *,
    actor: Actor,
    tag_id: int,
    customer_ids: Iterable[int],
    source: TagSource | str = TagSource.MANUAL,
    source_ref: str | None = None,
) -> BulkTagResult:
    """Give many customers a tag at once; ids of customers this actor cannot see are reported, not tagged."""
    actor.require(Permission.WRITE)
    source = _source(source)
    tag = get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    wanted = set(customer_ids)
    visible = customers.visible_customer_ids(session, actor=actor, customer_ids=wanted)
    added = _add(session, actor=actor, tag=tag, customer_ids=visible, source=source, source_ref=source_ref)
    result = BulkTagResult(
        tag_id=tag.id,
        changed=added,
        unchanged=len(visible) - added,
        not_found=[str(i) for i in sorted(wanted - visible)],
    )
    _audit(
        session,
        actor=actor,
        action="tag.bulk_added",
        tag=tag,
        detail={
            "source": source.value,
            "added": added,
            "asked": len(wanted),
            "not_found": len(result.not_found),
        },
        customer_id=None,
    )
    return result


def untag_customers(
    session: Session, *, actor: Actor, tag_id: int, customer_ids: Iterable[int]
) -> BulkTagResult:
    """Take a tag off many customers at once."""
    actor.require(Permission.WRITE)
    tag = get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    wanted = set(customer_ids)
    visible = customers.visible_customer_ids(session, actor=actor, customer_ids=wanted)
    removed = _remove(session, actor=actor, tag=tag, customer_ids=visible)
    result = BulkTagResult(
        tag_id=tag.id,
        changed=removed,
        unchanged=len(visible) - removed,
        not_found=[str(i) for i in sorted(wanted - visible)],
    )
    _audit(
        session,
        actor=actor,
        action="tag.bulk_removed",
        tag=tag,
        detail={"removed": removed, "asked": len(wanted), "not_found": len(result.not_found)},
        customer_id=None,
    )
    return result


def tag_customers_by_identity(
    session: Session,
    *,
    actor: Actor,
    tag_id: int,
    kind: str,
    values: Iterable[str],
    source: TagSource | str = TagSource.IMPORT,
    source_ref: str | None = None,
) -> BulkTagResult:
    """Tag the customers an imported list names (phones in any spelling, member ids, …); values that name
    nobody this actor can see come back in `not_found`."""
    actor.require(Permission.WRITE)
    get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    resolved, missing = customers.customer_ids_by_identity(session, actor=actor, kind=kind, values=values)
    result = tag_customers(
        session,
        actor=actor,
        tag_id=tag_id,
        customer_ids=resolved.values(),
        source=source,
        source_ref=source_ref,
    )
    return result.model_copy(update={"not_found": missing})


def untag_customers_by_identity(
    session: Session, *, actor: Actor, tag_id: int, kind: str, values: Iterable[str]
) -> BulkTagResult:
    """Take a tag off the customers an imported list names."""
    actor.require(Permission.WRITE)
    get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    resolved, missing = customers.customer_ids_by_identity(session, actor=actor, kind=kind, values=values)
    result = untag_customers(session, actor=actor, tag_id=tag_id, customer_ids=resolved.values())
    return result.model_copy(update={"not_found": missing})


# --- merges and erasure (called by the customers domain) --------------------------------------------


def move_tags(
    session: Session, *, workspace_id: int, from_customer_id: int, to_customer_id: int
) -> list[int]:
    """On a merge: the tags of the merged record that the survivor lacks move to the survivor, keeping
    their source and time; returns their tag ids, for the merge log (unmerge moves them back). Tags both
    carry stay on the merged record too. No tag events: the merge has its own."""
    held = set(
        session.scalars(
            select(CustomerTag.tag_id).where(
                CustomerTag.workspace_id == workspace_id, CustomerTag.customer_id == to_customer_id
            )
        )
    )
    moving = sorted(
        set(
            session.scalars(
                select(CustomerTag.tag_id).where(
                    CustomerTag.workspace_id == workspace_id, CustomerTag.customer_id == from_customer_id
                )
            )
        )
        - held
    )
    _reassign(
        session, workspace_id=workspace_id, tag_ids=moving, from_id=from_customer_id, to_id=to_customer_id
    )
    return moving


def move_tags_back(
    session: Session, *, workspace_id: int, tag_ids: Iterable[int], from_customer_id: int, to_customer_id: int
) -> None:
    """On an unmerge: the tags a merge moved go back to the record they came from (those the survivor
    still carries)."""
    _reassign(
        session,
        workspace_id=workspace_id,
        tag_ids=sorted(tag_ids),
        from_id=from_customer_id,
        to_id=to_customer_id,
    )


def _reassign(session: Session, *, workspace_id: int, tag_ids: list[int], from_id: int, to_id: int) -> None:
    for chunk in _chunks(tag_ids):
        session.execute(
            update(CustomerTag)
            .where(
                CustomerTag.workspace_id == workspace_id,
                CustomerTag.customer_id == from_id,
                CustomerTag.tag_id.in_(chunk),
            )
            .values(customer_id=to_id)
            .execution_options(synchronize_session=False)
        )


def delete_customer_tags(session: Session, *, workspace_id: int, customer_ids: Iterable[int]) -> int:
    """Erasure (PIPL): every tag these customers carry goes; returns how many."""
    removed = 0
    for chunk in _chunks(sorted(set(customer_ids))):
        result = session.execute(
            delete(CustomerTag).where(
                CustomerTag.workspace_id == workspace_id, CustomerTag.customer_id.in_(chunk)
            )
        )
        removed += int(result.rowcount)  # type: ignore[attr-defined]
    return removed


def sync_rule_tag(
    session: Session,
    *,
    workspace_id: int,
    tag_id: int,
    source_ref: str,
    add: Iterable[int],
    remove: Iterable[int],
) -> tuple[int, int]:
    """Keep a rule tag current (a system write, no actor): customers in `add` gain the tag with source
    `rule` unless they carry it already (by any source); customers in `remove` lose it only where the
    rule put it (source `rule`, this `source_ref`), so a tag given by hand is never taken by a rule.
    Each change emits tag.added / tag.removed; returns (added, removed)."""
    tag = get_tag(session, workspace_id=workspace_id, tag_id=tag_id)
    wanted = set(add)
    new = sorted(wanted - _carrying(session, tag_id=tag.id, customer_ids=sorted(wanted)))
    now = utcnow()
    payload = {**_event_payload(session, tag, TagSource.RULE), "source_ref": source_ref}
    for chunk in _chunks(new):
        session.execute(
            insert(CustomerTag),
            [
                {
                    "customer_id": customer_id,
                    "tag_id": tag.id,
                    "workspace_id": workspace_id,
                    "source": TagSource.RULE.value,
                    "source_ref": source_ref,
                    "actor_user_id": None,
                    "tagged_at": now,
                }
                for customer_id in chunk
            ],
        )
    removed: list[int] = []
    for chunk in _chunks(sorted(set(remove))):
        ruled = (
            CustomerTag.tag_id == tag.id,
            CustomerTag.customer_id.in_(chunk),
            CustomerTag.source == TagSource.RULE.value,
            CustomerTag.source_ref == source_ref,
        )
        found = list(session.scalars(select(CustomerTag.customer_id).where(*ruled)))
        if found:
            session.execute(delete(CustomerTag).where(*ruled))
            removed.extend(found)
    domain_events.record_many(
        session,
        [
            {
                "workspace_id": workspace_id,
                "type": type_,
                "customer_id": customer_id,
                "payload": payload,
                "occurred_at": now,
            }
            for type_, ids in (
                (DomainEventType.TAG_ADDED, new),
                (DomainEventType.TAG_REMOVED, sorted(removed)),
            )
            for customer_id in ids
        ],
    )
    return len(new), len(removed)
