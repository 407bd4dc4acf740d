"""Identity resolution: which customer a record's identities point to; merge, unmerge and conflict review.

Loading a batch resolves every row's identity keys at once (`resolve_key_groups`); people merge records
by hand (`merge_customers`, `resolve_review`) and undo a merge (`unmerge`) through the same verbs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from siyu.core import audit, bulk
from siyu.core.domain_events import DomainEventType, record_many
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import rollups
from siyu.customers.models import (
    SINGLE_VALUED_KINDS,
    Consent,
    Customer,
    CustomerRollup,
    Gender,
    Identity,
    IdentityKind,
    IdentityReview,
    MergeLog,
)
from siyu.events.models import CustomerEvent
from siyu.orders.models import Order
from siyu.tags import service as tags

# A record is attached to the customer of its first key in this order when its keys point to customers
# that may not be merged (a conflict). Platform ids that a person holds exactly one of come first: they
# are the most specific; then the phone, the key most systems share; custom kinds last, by name.
KEY_PRIORITY: tuple[str, ...] = (
    IdentityKind.WECHAT_UNIONID,
    IdentityKind.SHOP_MEMBER_ID,
    IdentityKind.DOUYIN_OPEN_ID,
    IdentityKind.PHONE,
    IdentityKind.WECOM_EXTERNAL_USERID,
    IdentityKind.WECHAT_OPENID,
    IdentityKind.EMAIL,
)
_SINGLE = frozenset(str(k) for k in SINGLE_VALUED_KINDS)
# profile fields a merge fills on the survivor when it has none
_FILLABLE = ("name", "gender", "birthday", "city", "owner_user_id", "first_channel_id")
_CHUNK = 5000


def key_order(kind: str) -> tuple[int, str]:
    """Sort key of an identity kind in `KEY_PRIORITY` (custom kinds after the built-in ones, by name)."""
    try:
        return (KEY_PRIORITY.index(kind), "")  # type: ignore[arg-type]
    except ValueError:
        return (len(KEY_PRIORITY), kind)


@dataclass
class KeyGroup:
    """The identity keys one or more batch rows carry, with what a new customer would start from."""

    keys: list[tuple[str, str]]  # (kind, normalised value), in `KEY_PRIORITY` order
    first_at: datetime | None = None
    first_channel_id: int | None = None


@dataclass
class Resolution:
    """The customer of every key group (None for a group without keys) and what resolving changed."""

    customer_ids: list[int | None]
    created_ids: list[int] = field(default_factory=list)
    merges: int = 0
    conflicts: int = 0
    identities_added: int = 0
    touched_ids: set[int] = field(default_factory=set)
    merged_into: dict[int, int] = field(default_factory=dict)  # merged customer → survivor


class _UnionFind:
    """Union-find over identity keys and existing customers that refuses unions joining two different
    values of a single-valued identity kind (two people, not one)."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.single: list[dict[str, set[str]]] = []
        self.customers: list[set[int]] = []

    def add(self, single: dict[str, set[str]] | None = None, customer_id: int | None = None) -> int:
        self.parent.append(len(self.parent))
        self.single.append(single or {})
        self.customers.append({customer_id} if customer_id is not None else set())
        return len(self.parent) - 1

    def find(self, node: int) -> int:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def conflicts(self, a: int, b: int) -> str | None:
        """The kind on which roots `a` and `b` hold values with none in common, if any."""
        sa, sb = self.single[a], self.single[b]
        for kind, values in sa.items():
            other = sb.get(kind)
            if other and values and values.isdisjoint(other):
                return kind
        return None

    def union(self, a: int, b: int) -> str | None:
        """Join the sets of `a` and `b`; returns the conflicting kind instead when they may not join."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        kind = self.conflicts(ra, rb)
        if kind is not None:
            return kind
        if len(self.customers[ra]) + len(self.single[ra]) < len(self.customers[rb]) + len(self.single[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        for k, values in self.single[rb].items():
            self.single[ra].setdefault(k, set()).update(values)
        self.customers[ra] |= self.customers[rb]
        self.single[rb] = {}
        self.customers[rb] = set()
        return None


def resolve_key_groups(
    session: Session,
    *,
    workspace_id: int,
    groups: Sequence[KeyGroup],
    source: str,
    actor_user_id: int | None = None,
) -> Resolution:
    """Find or create the customer of every key group, merging and flagging as the keys demand.

    A group whose keys are known attaches to their customer; unknown keys are added to it
    (identity.added). Groups sharing keys resolve to one customer, transitively across the batch.
    Keys leading to several existing customers merge them into the oldest (identity.merged, with a
    merge log), unless that joins two different values of a single-valued kind: then the customers
    stay apart, an `IdentityReview` is opened (identity.conflict_flagged) and the group attaches to the
    customer of its first key in `KEY_PRIORITY`. Groups with unknown keys only create a customer
    (customer.created). Keys must be normalised and free of junk already.
    """
    now = utcnow()
    distinct = sorted({key for g in groups for key in g.keys})
    known_rows, existing_single = _known_keys(
        session,
        workspace_id=workspace_id,
        keys=pl.DataFrame(distinct, schema={"kind": pl.Utf8, "value": pl.Utf8}, orient="row"),
    )
    known = {(k, v): c for k, v, c in known_rows.iter_rows()}

    uf = _UnionFind()
    node_of_key: dict[tuple[str, str], int] = {}
    node_of_customer: dict[int, int] = {}
    for customer_id in sorted(set(known.values())):
        node_of_customer[customer_id] = uf.add(existing_single.get(customer_id), customer_id)
    for key in distinct:
        single = {key[0]: {key[1]}} if key[0] in _SINGLE else None
        node = uf.add(single)
        node_of_key[key] = node
        if key in known:
            uf.union(node_of_customer[known[key]], node)

    # rows in file order: a key that would join conflicting sets is left where it is, and noted
    conflict_pairs: list[tuple[int, int, str, list[tuple[str, str]]]] = []
    for group in groups:
        if not group.keys:
            continue
        first = node_of_key[group.keys[0]]
        for key in group.keys[1:]:
            kind = uf.union(first, node_of_key[key])
            if kind is not None:
                conflict_pairs.append((first, node_of_key[key], kind, group.keys))

    # each final set is one customer: an existing one (the oldest, others merged into it) or a new one
    roots = {uf.find(node) for node in node_of_key.values()}
    created_at = _created_at(session, {c for r in roots if len(uf.customers[r]) > 1 for c in uf.customers[r]})
    customer_of_root: dict[int, int] = {}
    result = Resolution(customer_ids=[])
    new_roots: list[int] = []
    for root in sorted(roots):
        members = uf.customers[root]
        if not members:
            new_roots.append(root)
            continue
        if len(members) == 1:
            (customer_of_root[root],) = members
            continue
        survivor, *others = sorted(members, key=lambda c: (created_at[c], c))
        customer_of_root[root] = survivor
        for merged_id in others:
            merge_customers(
                session,
                workspace_id=workspace_id,
                survivor_id=survivor,
                merged_id=merged_id,
                reason=f"{source}: records share an identity",
                actor_user_id=actor_user_id,
                refresh=False,
            )
            result.merges += 1
            result.touched_ids.update((survivor, merged_id))
            result.merged_into[merged_id] = survivor

    # new customers start at their earliest record, from the channel of that record
    start_of_root: dict[int, tuple[datetime, int | None]] = {}
    for group in groups:
        if not group.keys:
            continue
        root = uf.find(node_of_key[group.keys[0]])
        if root in customer_of_root:
            continue
        at = group.first_at or now
        if root not in start_of_root or at < start_of_root[root][0]:
            start_of_root[root] = (at, group.first_channel_id or start_of_root.get(root, (at, None))[1])
        elif start_of_root[root][1] is None and group.first_channel_id is not None:
            start_of_root[root] = (start_of_root[root][0], group.first_channel_id)
    new_ids = bulk.reserve_ids(session, "customer", len(new_roots))
    for root, customer_id in zip(new_roots, new_ids, strict=True):
        customer_of_root[root] = customer_id
    if new_ids:
        starts = [start_of_root.get(r, (now, None)) for r in new_roots]
        _insert_customers(
            session,
            workspace_id=workspace_id,
            ids=pl.Series(new_ids, dtype=pl.Int64),
            first_at=pl.Series([s[0] for s in starts], dtype=_UTC_US),
            first_channel_ids=pl.Series([s[1] for s in starts], dtype=pl.Int64),
            now=now,
        )
        result.created_ids = list(new_ids)
        result.touched_ids.update(new_ids)
    created = set(new_ids)

    # keys not known yet belong to their set's customer from now on
    added: list[tuple[int, str, str]] = []
    for key in distinct:
        if key not in known:
            added.append((customer_of_root[uf.find(node_of_key[key])], key[0], key[1]))
    if added:
        _insert_identities(
            session,
            workspace_id=workspace_id,
            identities=pl.DataFrame(
                added, schema={"customer_id": pl.Int64, "kind": pl.Utf8, "value": pl.Utf8}, orient="row"
            ),
            source=source,
            now=now,
        )
    result.identities_added = len(added)

    # domain events in bulk: a first import creates as many customers as it has people
    _insert_domain_events(
        session,
        workspace_id=workspace_id,
        events=pl.concat(
            [
                _created_events(pl.Series(new_ids, dtype=pl.Int64), source),
                pl.DataFrame(
                    [
                        (
                            customer_id,
                            str(DomainEventType.IDENTITY_ADDED),
                            json.dumps({"kind": kind, "source": source}),
                        )
                        for customer_id, kind, _value in added
                        if customer_id not in created
                    ],
                    schema=_EVENT_SCHEMA,
                    orient="row",
                ),
            ]
        ),
        now=now,
    )

    seen_pairs: set[tuple[int, int]] = set()
    for node_a, node_b, kind, keys in conflict_pairs:
        a, b = customer_of_root[uf.find(node_a)], customer_of_root[uf.find(node_b)]
        pair = (min(a, b), max(a, b))
        if a == b or pair in seen_pairs:
            continue
        seen_pairs.add(pair)
        review = open_review(
            session,
            workspace_id=workspace_id,
            customer_a_id=pair[0],
            customer_b_id=pair[1],
            reason=f"a {source} record links two customers holding different {kind} values",
            evidence={"kind": kind, "record_keys": [list(k) for k in keys]},
        )
        if review is not None:
            result.conflicts += 1

    result.customer_ids = [
        customer_of_root[uf.find(node_of_key[g.keys[0]])] if g.keys else None for g in groups
    ]
    return result


_UTC_US = pl.Datetime("us", "UTC")
_EVENT_SCHEMA = {"customer_id": pl.Int64, "type": pl.Utf8, "payload": pl.Utf8}


def resolve_single_keys(
    session: Session,
    *,
    workspace_id: int,
    keys: pl.DataFrame,
    source: str,
    resolved: pl.DataFrame | None = None,
) -> tuple[pl.Series, list[int]]:
    """The customer of each record that carries exactly one identity key, found or created set-based.

    `keys`: one row per distinct key, with `kind`, `value` (normalised, free of junk), `first_at` and
    `first_channel_id` (what a new customer starts from). A single key links no two records and no two
    customers, so it needs none of the grouping of `resolve_key_groups`: a known key attaches to its
    customer, an unknown one creates a customer (customer.created) holding it. The caller must leave
    here only keys that no record with several keys carries, and resolve those records first (their
    merges move identities, so a key of a merged customer then points to the survivor). `resolved`
    (kind, value, customer_id) may name keys whose customer the caller knows already, from earlier
    in the same transaction and current with every merge since: they are not looked up again.
    Returns the customer id of each row of `keys`, in order, and the ids of the customers created.
    """
    if keys.height == 0:
        return pl.Series("customer_id", [], dtype=pl.Int64), []
    now = utcnow()
    frame = keys.with_row_index("_pos")
    if resolved is not None and resolved.height:
        frame = frame.join(resolved.select("kind", "value", "customer_id"), on=["kind", "value"], how="left")
        hits = frame.filter(pl.col("customer_id").is_not_null())
        frame = frame.filter(pl.col("customer_id").is_null()).drop("customer_id")
    else:
        hits = None
    known, _ = _known_keys(
        session, workspace_id=workspace_id, keys=frame.select("kind", "value"), with_single=False
    )
    frame = frame.join(known, on=["kind", "value"], how="left")
    new = frame.filter(pl.col("customer_id").is_null()).sort("kind", "value")
    new_ids = pl.Series("new_id", bulk.reserve_ids(session, "customer", new.height), dtype=pl.Int64)
    if new.height:
        new = new.with_columns(new_ids)
        _insert_customers(
            session,
            workspace_id=workspace_id,
            ids=new_ids,
            first_at=new["first_at"].cast(_UTC_US).fill_null(now),
            first_channel_ids=new["first_channel_id"].cast(pl.Int64),
            now=now,
        )
        _insert_identities(
            session,
            workspace_id=workspace_id,
            identities=new.select(pl.col("new_id").alias("customer_id"), "kind", "value"),
            source=source,
            now=now,
        )
        _insert_domain_events(
            session, workspace_id=workspace_id, events=_created_events(new_ids, source), now=now
        )
        frame = (
            frame.join(new.select("_pos", "new_id"), on="_pos", how="left")
            .with_columns(pl.coalesce("customer_id", "new_id").alias("customer_id"))
            .drop("new_id")
        )
    if hits is not None:
        frame = pl.concat([frame, hits], how="diagonal_relaxed")
    return frame.sort("_pos")["customer_id"], new_ids.to_list()


def resolve_unlinked_groups(
    session: Session,
    *,
    workspace_id: int,
    groups: pl.DataFrame,
    keys: pl.DataFrame,
    source: str,
    resolved: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.Series]:
    """Records with several identity keys that link nothing, created set-based.

    `groups`: one row per record group (`_group`, `first_at`, `first_channel_id`); `keys`: its keys
    (`_group`, `kind`, `value`, normalised, free of junk). The caller must pass only groups that share
    no key with any other group of the batch. A group none of whose keys is known (to the store, or to
    `resolved`: kind, value, customer_id from earlier in the same transaction) is one new person: a
    customer holding all its keys (customer.created), nothing to merge and nothing to conflict with.
    Returns (`_group`, `customer_id`) of the groups created, and the `_group`s that hold a known key,
    which the caller resolves with `resolve_key_groups`.
    """
    schema: dict[str, pl.DataType] = {"_group": groups.schema["_group"], "customer_id": pl.Int64()}
    if groups.height == 0:
        return pl.DataFrame(schema=schema), groups["_group"]
    now = utcnow()
    pairs = keys.select("kind", "value").unique()
    known, _ = _known_keys(session, workspace_id=workspace_id, keys=pairs, with_single=False)
    if resolved is not None and resolved.height:
        known = pl.concat([known.select("kind", "value"), resolved.select("kind", "value")])
    linked = keys.join(known.select("kind", "value"), on=["kind", "value"], how="semi")["_group"].unique()
    new = groups.filter(~pl.col("_group").is_in(linked.implode())).sort("_group")
    if new.height == 0:
        return pl.DataFrame(schema=schema), linked
    new_ids = pl.Series("customer_id", bulk.reserve_ids(session, "customer", new.height), dtype=pl.Int64)
    new = new.with_columns(new_ids)
    _insert_customers(
        session,
        workspace_id=workspace_id,
        ids=new_ids,
        first_at=new["first_at"].cast(_UTC_US).fill_null(now),
        first_channel_ids=new["first_channel_id"].cast(pl.Int64),
        now=now,
    )
    _insert_identities(
        session,
        workspace_id=workspace_id,
        identities=keys.join(new.select("_group", "customer_id"), on="_group").select(
            "customer_id", "kind", "value"
        ),
        source=source,
        now=now,
    )
    _insert_domain_events(
        session, workspace_id=workspace_id, events=_created_events(new_ids, source), now=now
    )
    return new.select("_group", "customer_id"), linked


def _insert_customers(
    session: Session,
    *,
    workspace_id: int,
    ids: pl.Series,
    first_at: pl.Series,
    first_channel_ids: pl.Series,
    now: datetime,
) -> None:
    """New customers, each starting at its earliest record (never in the future) from that record's channel."""
    now_lit = pl.lit(now, _UTC_US)
    bulk.insert_frame(
        session,
        "customer",
        pl.DataFrame({"id": ids, "first_channel_id": first_channel_ids, "_at": first_at}).select(
            "id",
            pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
            pl.lit(str(Gender.UNKNOWN)).alias("gender"),
            pl.lit("{}").alias("attributes"),
            "first_channel_id",
            pl.min_horizontal(pl.col("_at").cast(_UTC_US), now_lit).alias("created_at"),
            now_lit.alias("updated_at"),
        ),
    )


def _insert_identities(
    session: Session, *, workspace_id: int, identities: pl.DataFrame, source: str, now: datetime
) -> None:
    """Identity rows (`identities`: customer_id, kind, value)."""
    bulk.insert_frame(
        session,
        "identity",
        identities.select(
            pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
            pl.col("customer_id").cast(pl.Int64),
            pl.col("kind").cast(pl.Utf8),
            pl.col("value").cast(pl.Utf8),
            pl.lit(source[:64]).alias("source"),
            pl.lit(now, _UTC_US).alias("created_at"),
        ),
    )


def _created_events(customer_ids: pl.Series, source: str) -> pl.DataFrame:
    return pl.DataFrame({"customer_id": customer_ids.cast(pl.Int64)}).select(
        "customer_id",
        pl.lit(str(DomainEventType.CUSTOMER_CREATED)).alias("type"),
        pl.lit(json.dumps({"source": source})).alias("payload"),
    )


def _insert_domain_events(
    session: Session, *, workspace_id: int, events: pl.DataFrame, now: datetime
) -> None:
    """Domain events (`events`: customer_id, type, payload as JSON text) occurring now."""
    if events.height == 0:
        return
    bulk.insert_frame(
        session,
        "domain_event",
        events.select(
            pl.col("customer_id").cast(pl.Int64),
            pl.col("type").cast(pl.Utf8),
            pl.col("payload").cast(pl.Utf8),
            pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
            pl.lit(now, _UTC_US).alias("occurred_at"),
            pl.lit(now, _UTC_US).alias("created_at"),
        ),
    )


def _known_keys(
    session: Session, *, workspace_id: int, keys: pl.DataFrame, with_single: bool = True
) -> tuple[pl.DataFrame, dict[int, dict[str, set[str]]]]:
    """Which keys (`keys`: kind, value) are known, as rows (kind, value, customer_id), and, when
    `with_single`, every single-valued identity of those customers."""
    schema = {"kind": pl.Utf8, "value": pl.Utf8, "customer_id": pl.Int64}
    if keys.height == 0:
        return pl.DataFrame(schema=schema), {}
    name = bulk.stage(session, "stage_identity_key", keys.select("kind", "value"))
    rows = bulk.fetch_frame(
        session,
        f"SELECT i.kind, i.value, i.customer_id FROM identity i JOIN {name} s "
        "ON i.kind = s.kind AND i.value = s.value WHERE i.workspace_id = :ws",
        {"ws": workspace_id},
        schema,
    )
    single: dict[int, dict[str, set[str]]] = {}
    if with_single:
        single_kinds = ", ".join(f"'{k}'" for k in sorted(_SINGLE))
        singles = bulk.fetch_frame(
            session,
            f"SELECT i.customer_id, i.kind, i.value FROM identity i WHERE i.workspace_id = :ws "
            f"AND i.kind IN ({single_kinds}) AND i.customer_id IN ("
            f"SELECT k.customer_id FROM identity k JOIN {name} s ON k.kind = s.kind AND k.value = s.value "
            "WHERE k.workspace_id = :ws)",
            {"ws": workspace_id},
            {"customer_id": pl.Int64, "kind": pl.Utf8, "value": pl.Utf8},
        )
        for customer_id, kind, value in singles.iter_rows():
            single.setdefault(customer_id, {}).setdefault(kind, set()).add(value)
    bulk.drop_stage(session, name)
    return rows, single


def _in_chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _created_at(session: Session, customer_ids: set[int]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for chunk in _in_chunks(customer_ids):
        for customer_id, created in session.execute(
            select(Customer.id, Customer.created_at).where(Customer.id.in_(chunk))
        ):
            out[customer_id] = created
    return out


# --- merge and unmerge ------------------------------------------------------------------------------


def _live_customer(session: Session, *, workspace_id: int, customer_id: int, where: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != workspace_id:
        raise NotFound(f"customer {customer_id} does not exist in this workspace", where=where)
    if customer.merged_into_id is not None:
        raise Conflict(
            f"customer {customer_id} was merged into customer {customer.merged_into_id}",
            where=where,
            hint=f"use customer {customer.merged_into_id} instead",
        )
    if customer.erased_at is not None:
        raise Conflict(f"customer {customer_id} was erased", where=where)
    return customer


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _from_json(field_name: str, value: Any) -> Any:
    return date.fromisoformat(value) if field_name == "birthday" and value is not None else value


def _empty(field_name: str, value: Any) -> bool:
    return value is None or (field_name == "gender" and value == Gender.UNKNOWN)


def _move(session: Session, model: Any, ids: list[int], *, from_id: int, to_id: int) -> None:
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        session.execute(
            update(model)
            .where(model.id.in_(chunk), model.customer_id == from_id)
            .values(customer_id=to_id)
            .execution_options(synchronize_session=False)
        )


def merge_customers(
    session: Session,
    *,
    workspace_id: int,
    survivor_id: int,
    merged_id: int,
    reason: str,
    actor_user_id: int | None,
    refresh: bool = True,
) -> MergeLog:
    """Merge customer `merged_id` into `survivor_id`: its identities, orders, events, consents and tags move,
    empty profile fields of the survivor are filled from it, and it is hidden (`merged_into_id`).

    Writes a `MergeLog` listing exactly what moved (so `unmerge` can undo it), an identity.merged domain
    event and an audit row; refreshes the survivor's rollup unless `refresh` is False (bulk loads
    refresh once at the end).
    """
    if survivor_id == merged_id:
        raise ValidationFailed("a customer cannot be merged into itself", where="merged_id")
    survivor = _live_customer(
        session, workspace_id=workspace_id, customer_id=survivor_id, where="survivor_id"
    )
    merged = _live_customer(session, workspace_id=workspace_id, customer_id=merged_id, where="merged_id")
    session.flush()

    moved: dict[str, Any] = {}
    for label, model in (
        ("identity_ids", Identity),
        ("order_ids", Order),
        ("event_ids", CustomerEvent),
        ("consent_ids", Consent),
    ):
        ids = sorted(session.scalars(select(model.id).where(model.customer_id == merged_id)))
        _move(session, model, ids, from_id=merged_id, to_id=survivor_id)
        moved[label] = ids
    moved["tag_ids"] = tags.move_tags(
        session, workspace_id=workspace_id, from_customer_id=merged_id, to_customer_id=survivor_id
    )

    filled: dict[str, Any] = {}
    for name in _FILLABLE:
        theirs = getattr(merged, name)
        if _empty(name, getattr(survivor, name)) and not _empty(name, theirs):
            setattr(survivor, name, theirs)
            filled[name] = _json_value(theirs)
    attributes_added = {
        k: v for k, v in (merged.attributes or {}).items() if k not in (survivor.attributes or {})
    }
    if attributes_added:
        survivor.attributes = {**(survivor.attributes or {}), **attributes_added}
    moved["profile_filled"] = filled
    moved["attributes_added"] = attributes_added

    now = utcnow()
    merged.merged_into_id = survivor_id
    merged.updated_at = now
    survivor.updated_at = now
    log = MergeLog(
        workspace_id=workspace_id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        reason=reason[:200],
        moved=moved,
        actor_user_id=actor_user_id,
        created_at=now,
    )
    session.add(log)
    session.flush()
    session.execute(delete(CustomerRollup).where(CustomerRollup.customer_id == merged_id))
    record_many(
        session,
        [
            {
                "workspace_id": workspace_id,
                "type": DomainEventType.IDENTITY_MERGED,
                "customer_id": survivor_id,
                "payload": {"merged_id": merged_id, "merge_log_id": log.id, "reason": log.reason},
                "occurred_at": now,
            }
        ],
    )
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="customer.merged",
        target_type="customer",
        target_id=survivor_id,
        detail={"merged_id": merged_id, "merge_log_id": log.id, "reason": log.reason},
    )
    if refresh:
        rollups.refresh_rollups(session, workspace_id=workspace_id, customer_ids=[survivor_id])
    return log


def unmerge(session: Session, *, workspace_id: int, merge_log_id: int, actor_user_id: int | None) -> MergeLog:
    """Undo a merge: what moved goes back to the merged customer, which becomes visible again.

    Only what still sits with the survivor moves back; profile fields the merge filled are cleared again
    when they still hold the filled value. Refreshes both rollups, emits identity.unmerged, audits.
    """
    log = session.get(MergeLog, merge_log_id)
    if log is None or log.workspace_id != workspace_id:
        raise NotFound(f"merge {merge_log_id} does not exist in this workspace", where="merge_log_id")
    if log.undone_at is not None:
        raise Conflict(f"merge {merge_log_id} was undone already", where="merge_log_id")
    merged = session.get(Customer, log.merged_id)
    survivor = session.get(Customer, log.survivor_id)
    if merged is None or survivor is None or merged.merged_into_id != survivor.id:
        raise Conflict(
            f"merge {merge_log_id} cannot be undone: customer {log.merged_id} is no longer merged "
            f"into customer {log.survivor_id}",
            where="merge_log_id",
            hint="undo later merges of these customers first",
        )
    moved = log.moved or {}
    for label, model in (
        ("identity_ids", Identity),
        ("order_ids", Order),
        ("event_ids", CustomerEvent),
        ("consent_ids", Consent),
    ):
        _move(session, model, list(moved.get(label, [])), from_id=survivor.id, to_id=merged.id)
    tags.move_tags_back(
        session,
        workspace_id=workspace_id,
        tag_ids=moved.get("tag_ids", []),
        from_customer_id=survivor.id,
        to_customer_id=merged.id,
    )
    for name, value in (moved.get("profile_filled") or {}).items():
        if _json_value(getattr(survivor, name)) == value:
            setattr(survivor, name, Gender.UNKNOWN.value if name == "gender" else None)
    added = moved.get("attributes_added") or {}
    if added:
        survivor.attributes = {
            k: v for k, v in (survivor.attributes or {}).items() if not (k in added and added[k] == v)
        }
    now = utcnow()
    merged.merged_into_id = None
    merged.updated_at = now
    survivor.updated_at = now
    log.undone_at = now
    session.flush()
    record_many(
        session,
        [
            {
                "workspace_id": workspace_id,
                "type": DomainEventType.IDENTITY_UNMERGED,
                "customer_id": customer_id,
                "payload": {"survivor_id": survivor.id, "merged_id": merged.id, "merge_log_id": log.id},
                "occurred_at": now,
            }
            for customer_id in (survivor.id, merged.id)
        ],
    )
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="customer.unmerged",
        target_type="customer",
        target_id=survivor.id,
        detail={"merged_id": merged.id, "merge_log_id": log.id},
    )
    rollups.refresh_rollups(session, workspace_id=workspace_id, customer_ids=[survivor.id, merged.id])
    return log


def list_merges(session: Session, *, workspace_id: int, customer_id: int | None = None) -> list[MergeLog]:
    """Merges of the workspace (of one customer, as survivor or merged, when given), newest first."""
    query = select(MergeLog).where(MergeLog.workspace_id == workspace_id)
    if customer_id is not None:
        query = query.where(or_(MergeLog.survivor_id == customer_id, MergeLog.merged_id == customer_id))
    return list(session.scalars(query.order_by(MergeLog.id.desc())))


# --- conflict review --------------------------------------------------------------------------------


def open_review(
    session: Session,
    *,
    workspace_id: int,
    customer_a_id: int,
    customer_b_id: int,
    reason: str,
    evidence: dict[str, Any],
) -> IdentityReview | None:
    """Flag two customers for a person to decide on; None when this pair was flagged before (any status),
    so that loading the same records again flags nothing new."""
    a, b = min(customer_a_id, customer_b_id), max(customer_a_id, customer_b_id)
    exists = session.scalar(
        select(IdentityReview.id).where(
            IdentityReview.workspace_id == workspace_id,
            IdentityReview.customer_a_id == a,
            IdentityReview.customer_b_id == b,
        )
    )
    if exists is not None:
        return None
    now = utcnow()
    review = IdentityReview(
        workspace_id=workspace_id,
        customer_a_id=a,
        customer_b_id=b,
        reason=reason[:300],
        evidence=evidence,
        status="open",
        created_at=now,
    )
    session.add(review)
    session.flush()
    record_many(
        session,
        [
            {
                "workspace_id": workspace_id,
                "type": DomainEventType.IDENTITY_CONFLICT,
                "customer_id": customer_id,
                "payload": {"review_id": review.id, "customer_a_id": a, "customer_b_id": b},
                "occurred_at": now,
            }
            for customer_id in (a, b)
        ],
    )
    return review


def list_reviews(
    session: Session, *, workspace_id: int, status: str | None = "open", limit: int = 200
) -> list[IdentityReview]:
    """Identity reviews of the workspace (open ones by default), oldest first."""
    query = select(IdentityReview).where(IdentityReview.workspace_id == workspace_id)
    if status is not None:
        query = query.where(IdentityReview.status == status)
    return list(session.scalars(query.order_by(IdentityReview.id).limit(limit)))


def open_review_between(session: Session, *, workspace_id: int, a: int, b: int) -> bool:
    """Whether an open identity review says customers `a` and `b` may be one person."""
    found = session.scalar(
        select(IdentityReview.id)
        .where(
            IdentityReview.workspace_id == workspace_id,
            IdentityReview.status == "open",
            or_(
                (IdentityReview.customer_a_id == a) & (IdentityReview.customer_b_id == b),
                (IdentityReview.customer_a_id == b) & (IdentityReview.customer_b_id == a),
            ),
        )
        .limit(1)
    )
    return found is not None


def _current(session: Session, customer_id: int) -> Customer | None:
    """The live customer a (possibly merged) customer id stands for now."""
    customer = session.get(Customer, customer_id)
    seen: set[int] = set()
    while customer is not None and customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def resolve_review(
    session: Session,
    *,
    workspace_id: int,
    review_id: int,
    decision: str,
    actor_user_id: int | None,
) -> IdentityReview:
    """Decide an open review: "merge" merges the two customers (into the older one), "dismiss" keeps
    them apart for good. Audited."""
    review = session.get(IdentityReview, review_id)
    if review is None or review.workspace_id != workspace_id:
        raise NotFound(f"identity review {review_id} does not exist in this workspace", where="review_id")
    if review.status != "open":
        raise Conflict(f"identity review {review_id} was {review.status} already", where="review_id")
    if decision not in ("merge", "dismiss"):
        raise ValidationFailed(
            f"unknown decision {decision!r}", where="decision", hint='use "merge" or "dismiss"'
        )
    detail: dict[str, Any] = {"review_id": review.id, "decision": decision}
    if decision == "merge":
        a, b = _current(session, review.customer_a_id), _current(session, review.customer_b_id)
        if a is None or b is None:
            raise Conflict("one of the customers of this review no longer exists", where="review_id")
        if a.id != b.id:
            survivor, merged = sorted((a, b), key=lambda c: (c.created_at, c.id))
            log = merge_customers(
                session,
                workspace_id=workspace_id,
                survivor_id=survivor.id,
                merged_id=merged.id,
                reason=f"identity review {review.id}: merged by a person",
                actor_user_id=actor_user_id,
            )
            detail["merge_log_id"] = log.id
        review.status = "merged"
    else:
        review.status = "dismissed"
    review.resolved_at = utcnow()
    review.resolved_by_user_id = actor_user_id
    audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action=f"identity_review.{review.status}",
        target_type="identity_review",
        target_id=review.id,
        detail=detail,
    )
    session.flush()
    return review
