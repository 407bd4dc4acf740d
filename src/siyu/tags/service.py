"""Tag verbs: define tag groups and tags, tag and untag one customer or many (by id or by an imported
list of identity values), and read a customer's tags.

Every write needs the `write` permission, reaches only customers the actor may see, and lands in the
caller's transaction with its audit row and one `tag.added` / `tag.removed` domain event per customer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import Session

from siyu.auth.service import Actor, Permission
from siyu.core import audit, domain_events
from siyu.core.domain_events import DomainEventType
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.tags.models import CustomerTag, Tag, TagGroup, TagSource
from siyu.tags.schemas import (
    BulkTagResult,
    CustomerTagOut,
    IdentityListResult,
    RowReject,
    TagCount,
    TagGroupOut,
    TagOut,
)

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


def _not_named(named_by: Sequence[str], *, what: str, change: str) -> None:
    """Segment rules name tags by name: a tag they name cannot be renamed or deleted under them."""
    if named_by:
        raise Conflict(
            f"{what} is named by segment {', '.join(repr(n) for n in named_by)}",
            where="tag_id",
            hint=f"change those segments' rules (or their rule tag) first, then {change}",
        )


def rename_group(
    session: Session, *, actor: Actor, group_id: int, name: str, named_by: Sequence[str] = ()
) -> TagGroup:
    """Give a tag group another name (unique in the workspace); audited with both names. `named_by`:
    the segments whose rules name one of its tags as group/name (segments.tag_references)."""
    actor.require(Permission.WRITE)
    group = get_group(session, workspace_id=actor.workspace_id, group_id=group_id)
    _not_named(named_by, what=f"a tag of group {group.name!r}", change="rename the group")
    name = _clean_name(name, where="name")
    if name == group.name:
        return group
    taken = session.scalar(
        select(TagGroup.id).where(TagGroup.workspace_id == actor.workspace_id, TagGroup.name == name)
    )
    if taken is not None:
        raise Conflict(f"tag group {name!r} exists already", where="name", hint="choose another name")
    before, group.name = group.name, name
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="tag_group.renamed",
        target_type="tag_group",
        target_id=group.id,
        detail={"from": before, "to": name},
    )
    return group


def rename_tag(
    session: Session, *, actor: Actor, tag_id: int, name: str, named_by: Sequence[str] = ()
) -> Tag:
    """Give a tag another name (unique in its group); the customers carrying it keep it. Audited.
    `named_by`: the segments that name the tag (segments.tag_references); with any, nothing changes."""
    actor.require(Permission.WRITE)
    tag = get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    _not_named(named_by, what=f"tag {tag.name!r}", change="rename it")
    name = _clean_name(name, where="name")
    if name == tag.name:
        return tag
    if session.scalar(select(Tag.id).where(Tag.group_id == tag.group_id, Tag.name == name)) is not None:
        raise Conflict(f"tag {name!r} exists already in this group", where="name", hint="choose another name")
    before, tag.name = tag.name, name
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="tag.renamed",
        target_type="tag",
        target_id=tag.id,
        detail={"from": before, "to": name},
    )
    return tag


def _carriers(session: Session, *, workspace_id: int, tag_ids: list[int]) -> set[int]:
    if not tag_ids:
        return set()
    return set(
        session.scalars(
            select(CustomerTag.customer_id).where(
                CustomerTag.workspace_id == workspace_id, CustomerTag.tag_id.in_(tag_ids)
            )
        )
    )


def carriers_count(
    session: Session, *, actor: Actor, tag_id: int | None = None, group_id: int | None = None
) -> int:
    """How many customers carry this tag (or any tag of this group): what a deletion would take off,
    shown before it is confirmed. Counts every customer of the workspace, seen by this actor or not."""
    actor.require(Permission.READ)
    if (tag_id is None) == (group_id is None):
        raise ValidationFailed("name a tag or a group, one of the two", where="tag_id")
    if tag_id is not None:
        ids = [get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id).id]
    else:
        group = get_group(session, workspace_id=actor.workspace_id, group_id=group_id or 0)
        ids = list(session.scalars(select(Tag.id).where(Tag.group_id == group.id)))
    return len(_carriers(session, workspace_id=actor.workspace_id, tag_ids=ids))


def _drop_tag(session: Session, *, actor: Actor, tag: Tag) -> int:
    """Take the tag off everyone (each with its tag.removed, so segments follow) and delete it."""
    carriers = _carriers(session, workspace_id=actor.workspace_id, tag_ids=[tag.id])
    removed = _remove(session, actor=actor, tag=tag, customer_ids=carriers)
    session.delete(tag)
    session.flush()
    return removed


def delete_tag(
    session: Session,
    *,
    actor: Actor,
    tag_id: int,
    expected_customers: int | None = None,
    named_by: Sequence[str] = (),
) -> int:
    """Delete a tag: every customer carrying it loses it (a `tag.removed` event each) and the definition
    goes. `expected_customers` is the count the person confirmed: if more or fewer customers carry it
    now, nothing is deleted (Conflict) so that a confirmation never covers more than it said.
    Returns how many customers lost the tag. Needs `manage`: it touches every member's customers.
    `named_by`: the segments that name the tag (segments.tag_references); with any, nothing changes."""
    actor.require(Permission.MANAGE)
    tag = get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    _not_named(named_by, what=f"tag {tag.name!r}", change="delete it")
    _check_expected(session, actor=actor, tag_ids=[tag.id], expected=expected_customers)
    group = session.get(TagGroup, tag.group_id)
    name = tag.name
    removed = _drop_tag(session, actor=actor, tag=tag)
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="tag.deleted",
        target_type="tag",
        target_id=tag_id,
        detail={"group": group.name if group else "", "name": name, "customers": removed},
    )
    return removed


def delete_group(
    session: Session,
    *,
    actor: Actor,
    group_id: int,
    expected_customers: int | None = None,
    named_by: Sequence[str] = (),
) -> int:
    """Delete a tag group with all its tags (as `delete_tag` does for each); returns how many customers
    lost at least one of them."""
    actor.require(Permission.MANAGE)
    group = get_group(session, workspace_id=actor.workspace_id, group_id=group_id)
    _not_named(named_by, what=f"a tag of group {group.name!r}", change="delete the group")
    group_tags = list(session.scalars(select(Tag).where(Tag.group_id == group.id).order_by(Tag.id)))
    _check_expected(session, actor=actor, tag_ids=[t.id for t in group_tags], expected=expected_customers)
    customers_touched = _carriers(
        session, workspace_id=actor.workspace_id, tag_ids=[t.id for t in group_tags]
    )
    for tag in group_tags:
        _drop_tag(session, actor=actor, tag=tag)
    name = group.name
    session.delete(group)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="tag_group.deleted",
        target_type="tag_group",
        target_id=group_id,
        detail={"name": name, "tags": [t.name for t in group_tags], "customers": len(customers_touched)},
    )
    return len(customers_touched)


def _check_expected(session: Session, *, actor: Actor, tag_ids: list[int], expected: int | None) -> None:
    if expected is None:
        return
    now = len(_carriers(session, workspace_id=actor.workspace_id, tag_ids=tag_ids))
    if now != expected:
        raise Conflict(
            f"{now} customers carry it now, not the {expected} confirmed",
            where="expected_customers",
            hint="look at the count again and confirm once more",
        )


def tag_ids_of_group(session: Session, *, workspace_id: int, group_id: int) -> list[int]:
    group = get_group(session, workspace_id=workspace_id, group_id=group_id)
    return list(session.scalars(select(Tag.id).where(Tag.group_id == group.id)))


def tag_counts(session: Session, *, actor: Actor) -> dict[int, TagCount]:
    """Per tag: how many customers this actor may see carry it, by source (manual, rule, import…)."""
    actor.require(Permission.READ)
    rows = session.execute(
        select(CustomerTag.tag_id, CustomerTag.source, func.count())
        .where(
            CustomerTag.workspace_id == actor.workspace_id,
            CustomerTag.customer_id.in_(customers.visible_customers(actor)),
        )
        .group_by(CustomerTag.tag_id, CustomerTag.source)
    )
    counts: dict[int, TagCount] = {}
    for tag_id, source, n in rows:
        entry = counts.setdefault(tag_id, TagCount(tag_id=tag_id, customers=0, by_source={}))
        entry.customers += int(n)
        entry.by_source[str(source)] = int(n)
    return counts


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


# --- uploaded lists --------------------------------------------------------------------------------

LIST_MAX_ROWS = 100_000
# headers people put over a column of identities, per identity kind
_KIND_HEADERS = {
    "phone": ("phone", "mobile", "手机号", "手机", "电话"),
    "wecom_external_userid": ("wecom_external_userid", "external_userid", "externaluserid"),
    "shop_member_id": ("shop_member_id", "member_id", "会员号", "会员id"),
}


def _decode(content: bytes | str) -> str:
    if isinstance(content, str):
        return content.lstrip("\ufeff")
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in Chinese saves CSV as GBK
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(
        "the file is neither UTF-8 nor GBK text", where="file", hint="save it as CSV UTF-8"
    )


def read_identity_list(content: bytes | str, *, kind: str) -> tuple[list[tuple[int, str]], list[RowReject]]:
    """The values of an uploaded CSV list, with their row numbers (1 = the first line after the header),
    and the rows that hold no value. The column is the one headed by the kind (or a usual name for it:
    手机号, external_userid, 会员号…), or the only column."""
    kind = kind.strip().lower()
    rows = list(csv.reader(io.StringIO(_decode(content))))
    if not rows:
        raise ValidationFailed(
            "the file is empty", where="file", hint=f"a header line ({kind}) then one value a line"
        )
    header = [cell.strip().lower() for cell in rows[0]]
    names = _KIND_HEADERS.get(kind, (kind,))
    column = next((i for i, cell in enumerate(header) if cell in names), None)
    if column is None:
        if len(header) != 1:
            raise ValidationFailed(
                f"no column is headed {kind!r} among {', '.join(rows[0])}",
                where="file, line 1",
                hint=f"name the column {names[0]!r}, or upload one column",
            )
        column = 0
    if len(rows) - 1 > LIST_MAX_ROWS:
        raise ValidationFailed(
            f"the list has {len(rows) - 1} rows, more than {LIST_MAX_ROWS}", where="file", hint="split it"
        )
    values: list[tuple[int, str]] = []
    rejects: list[RowReject] = []
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=1):
        value = row[column].strip() if column < len(row) else ""
        if not value:
            if any(cell.strip() for cell in row):
                rejects.append(RowReject(row=number, value="", code="empty", reason=f"no {kind} in this row"))
            continue
        if value in first_row:
            rejects.append(
                RowReject(row=number, value=value, code="repeated", reason=f"repeats row {first_row[value]}")
            )
            continue
        first_row[value] = number
        values.append((number, value))
    return values, rejects


def tag_customers_by_list(
    session: Session,
    *,
    actor: Actor,
    tag_id: int,
    kind: str,
    content: bytes | str,
    filename: str | None = None,
    remove: bool = False,
) -> IdentityListResult:
    """Tag (or with `remove`, untag) the customers an uploaded CSV list names; every row that is empty,
    repeated or names nobody this actor may see comes back as a reject with its row number."""
    actor.require(Permission.WRITE)
    get_tag(session, workspace_id=actor.workspace_id, tag_id=tag_id)
    values, rejects = read_identity_list(content, kind=kind)
    given = [value for _, value in values]
    if remove:
        result = untag_customers_by_identity(session, actor=actor, tag_id=tag_id, kind=kind, values=given)
    else:
        result = tag_customers_by_identity(
            session,
            actor=actor,
            tag_id=tag_id,
            kind=kind,
            values=given,
            source=TagSource.IMPORT,
            source_ref=(filename or "list")[:100],
        )
    missing = set(result.not_found)
    rejects.extend(
        RowReject(row=row, value=value, code="not_found", reason="names no customer you may see")
        for row, value in values
        if value in missing
    )
    rejects.sort(key=lambda r: r.row)
    return IdentityListResult(result=result, kind=kind.strip().lower(), rows=len(values), rejects=rejects)


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
