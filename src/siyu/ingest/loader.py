"""Loading a validated batch into the pool: identity resolution, customers, orders, lines, events, rollups.

Set-based throughout: a batch is handled in chunks of whole orders; each chunk goes through
stage → resolve identities → upsert customers / orders / lines / events, then the rollups of every touched
customer are refreshed once. Everything happens in the caller's transaction. A file read in chunks is
loaded as one load of several batches (`streaming_load`): what the load learnt carries from one to the next.

Shaped for speed where a million orders arrive at once: rows reach the database as frames (COPY on
PostgreSQL, executemany of plain tuples on SQLite, `core.bulk`), never as ORM objects; a load into a
workspace without orders skips the read that compares incoming orders with stored ones (chunks hold
disjoint order numbers, so none can be stored); on SQLite the connection gets a large page cache while
it loads, so that the index pages the load keeps touching stay in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.channels import service as channels
from siyu.core import bulk
from siyu.core.config import get_settings
from siyu.core.db import is_postgres
from siyu.core.domain_events import DomainEventType, record_many
from siyu.core.timeutil import utcnow
from siyu.coupons import service as coupons
from siyu.customers import identity, identity_values, rollups
from siyu.customers.models import Consent, ConsentPurpose, ConsentStatus, Customer, Gender
from siyu.events import bulk as event_bulk
from siyu.ingest.schemas import (
    ATTRIBUTE_PREFIX,
    CONSENT_PREFIX,
    CUSTOM_IDENTITY_PREFIX,
    IDENTITY_FIELDS,
    PROPERTY_PREFIX,
    ImportKind,
    LoadResult,
    Reject,
    ValidatedBatch,
)
from siyu.orders import bulk as order_bulk
from siyu.workspaces import service as workspaces

Progress = Callable[[int, int], None]
DEFAULT_CHUNK_ROWS = 50_000
_TIME_FIELD = {
    ImportKind.CUSTOMERS: "created_at",
    ImportKind.ORDERS: "placed_at",
    ImportKind.EVENTS: "occurred_at",
}
_LINE_FIELDS = ("sku", "product_name", "category", "quantity", "unit_price_cents", "line_amount_cents")
_GRANTED = frozenset({"granted", "grant", "true", "yes", "y", "1", "同意", "是", "opt-in", "opt_in"})
_WITHDRAWN = frozenset({"withdrawn", "withdraw", "false", "no", "n", "0", "拒绝", "否", "opt-out", "opt_out"})


@dataclass
class _Context:
    """What a batch is checked and resolved against, read once per load."""

    workspace_id: int
    currency: str
    channel_ids: dict[str, int]
    store_ids: dict[str, int]
    owner_ids: dict[str, int]
    denylist: dict[str, frozenset[str]] = field(default_factory=dict)
    denylist_raw: tuple[str, ...] = ()
    # no order of the workspace was stored when the load began: chunks hold disjoint order numbers,
    # so no chunk can meet a stored order and the comparison read is skipped
    first_order_load: bool = False
    # keys of one-key records resolved by earlier chunks (kind, value, customer_id), kept current with
    # the merges of later chunks: a repeat customer is looked up once per load, not once per chunk
    resolved_keys: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"kind": pl.Utf8, "value": pl.Utf8, "customer_id": pl.Int64}
        )
    )

    def denied(self, kind: str) -> frozenset[str]:
        if kind not in self.denylist:
            self.denylist[kind] = identity_values.normalized_denylist(kind, self.denylist_raw)
        return self.denylist[kind]


def _context(session: Session, workspace_id: int, kind: ImportKind) -> _Context:
    workspace = workspaces.get_workspace(session, workspace_id=workspace_id)
    owners: dict[str, int] = {}
    if kind == ImportKind.CUSTOMERS:
        owners = auth.member_ids_by_email(session, workspace_id=workspace_id)
    return _Context(
        workspace_id=workspace_id,
        currency=workspace.currency,
        channel_ids=channels.channel_ids(session, workspace_id=workspace_id),
        store_ids=channels.store_codes(session, workspace_id=workspace_id),
        owner_ids=owners,
        denylist_raw=tuple(workspace.identity_denylist or ()) + tuple(get_settings().identity_denylist),
        first_order_load=kind == ImportKind.ORDERS
        and not order_bulk.workspace_has_orders(session, workspace_id=workspace_id),
    )


def identity_columns(frame: pl.DataFrame) -> dict[str, str]:
    """Identity columns of a batch frame → their identity kind."""
    out: dict[str, str] = {}
    for column in frame.columns:
        if column in IDENTITY_FIELDS:
            out[column] = column
        elif column.startswith(CUSTOM_IDENTITY_PREFIX):
            out[column] = column[len(CUSTOM_IDENTITY_PREFIX) :]
    return out


def load_batch(
    session: Session,
    *,
    workspace_id: int,
    batch: ValidatedBatch,
    source: str = "import",
    actor_user_id: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
) -> tuple[LoadResult, list[Reject]]:
    """Write the good rows of `batch` into the pool, in the caller's transaction.

    Returns what changed and the rows refused while loading (unknown channel, store or owner), which
    are left out. Counts are per record: distinct orders, events or customers.
    """
    with streaming_load(
        session,
        workspace_id=workspace_id,
        kind=ImportKind(batch.kind),
        source=source,
        actor_user_id=actor_user_id,
        chunk_rows=chunk_rows,
        progress=progress,
        total_rows=batch.rows.height,
    ) as loader:
        refused = loader.add(batch)
        return loader.finish(), refused


@contextmanager
def streaming_load(
    session: Session,
    *,
    workspace_id: int,
    kind: ImportKind,
    source: str = "import",
    actor_user_id: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    total_rows: int = 0,
) -> Iterator[BatchLoader]:
    """A `BatchLoader` for batches that arrive one after another (a file read in chunks), all loaded
    into the caller's transaction as one load; call `finish` after the last."""
    with bulk.sqlite_load_cache(session):
        yield BatchLoader(
            session,
            workspace_id=workspace_id,
            kind=kind,
            source=source,
            actor_user_id=actor_user_id,
            chunk_rows=chunk_rows,
            progress=progress,
            total_rows=total_rows,
        )


class BatchLoader:
    """One load made of several batches of one kind: what the load has seen so far (resolved identity
    keys, the orders of a first load, the touched customers) carries from batch to batch, and the
    rollups are refreshed once, by `finish`.

    The rows of one order must come in one batch (`add` keeps an order's rows within a batch together).
    """

    def __init__(
        self,
        session: Session,
        *,
        workspace_id: int,
        kind: ImportKind,
        source: str,
        actor_user_id: int | None,
        chunk_rows: int,
        progress: Progress | None,
        total_rows: int,
    ) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.kind = kind
        self.source = source
        self.actor_user_id = actor_user_id
        self.chunk_rows = chunk_rows
        self.progress = progress
        self.total_rows = total_rows
        self.ctx = _context(session, workspace_id, kind)
        self.result = LoadResult()
        self.touched: set[int] = set()
        self.done = 0
        # a first load of orders keeps what the rollups need of every order it inserts (see below)
        self.loaded = _LoadedOrders() if self.ctx.first_order_load else None

    def add(self, batch: ValidatedBatch) -> list[Reject]:
        """Load the good rows of `batch`; returns the rows refused while loading."""
        kind, ctx, session, result = self.kind, self.ctx, self.session, self.result
        rejects: list[Reject] = []
        source_of_field = {target: column for column, target in batch.mapping.items()}
        for chunk in _chunks(batch.rows, kind, self.chunk_rows):
            chunk, refused = _resolve_references(chunk, ctx, kind, source_of_field)
            rejects += refused
            chunk, resolution = _resolve_identities(
                session, chunk, ctx, kind, self.source, self.actor_user_id
            )
            result.customers_created += len(resolution.created_ids)
            result.customers_merged += resolution.merges
            result.conflicts_flagged += resolution.conflicts
            self.touched |= resolution.touched_ids
            if self.loaded is not None:
                self.loaded.merged_into.update(resolution.merged_into)
            if kind == ImportKind.ORDERS:
                self.touched |= _load_orders(session, chunk, ctx, self.source, result, self.loaded)
                rejects += _redeem_coupons(
                    session, chunk, ctx, source_of_field.get("coupon_code", "coupon_code")
                )
            elif kind == ImportKind.EVENTS:
                self.touched |= _load_events(session, chunk, ctx, self.source, result)
            else:
                self.touched |= _load_customers(
                    session, chunk, ctx, self.source, result, set(resolution.created_ids)
                )
            self.done += chunk.height + len(refused)
            if self.progress is not None:
                self.total_rows = max(self.total_rows, self.done)
                self.progress(self.done, self.total_rows)
        return rejects

    def finish(self) -> LoadResult:
        """Refresh the rollups of every customer the load touched; returns what the load changed."""
        if self.loaded is not None and self.loaded.complete(self.session, self.workspace_id):
            rollups.refresh_rollups_from_frames(
                self.session,
                workspace_id=self.workspace_id,
                customer_ids=self.touched,
                parts=self.loaded.combined(),
            )
        else:
            rollups.refresh_rollups(self.session, workspace_id=self.workspace_id, customer_ids=self.touched)
        self.result.touched_customer_ids = sorted(self.touched)
        return self.result


@dataclass
class _LoadedOrders:
    """What the rollups need of the orders a first load of orders inserted, for rollups computed in memory.

    When the workspace held no order as the load began, the orders it inserts are all the orders of
    every customer it touches, so their rollups need no read of `customer_order` (at a million orders,
    most of the refresh time). The orders are kept as they come up to 250 000, then folded into
    `rollups.RollupParts` (per customer, not per order), so that memory follows the customers, not the
    file. Merges during the load move orders of earlier chunks; `merged_into` follows them.
    """

    parts: rollups.RollupParts = field(default_factory=rollups.empty_rollup_parts)
    orders: list[pl.DataFrame] = field(default_factory=list)
    lines: list[pl.DataFrame] = field(default_factory=list)
    pending: int = 0
    merged_into: dict[int, int] = field(default_factory=dict)
    count: int = 0

    def add(self, orders: pl.DataFrame | None, lines: pl.DataFrame | None) -> None:
        if orders is None:
            return
        self.orders.append(orders)
        if lines is not None:
            self.lines.append(lines)
        self.count += orders.height
        self.pending += orders.height
        # the orders themselves are kept up to a bound, then folded into the per-customer parts
        if self.pending >= _FOLD_ORDERS:
            self._fold()

    def _fold(self) -> None:
        orders = pl.concat(self.orders) if self.orders else _EMPTY_ORDERS
        lines = pl.concat(self.lines) if self.lines else _EMPTY_LINES
        self.parts = self.parts.combine([rollups.RollupParts.of(orders, lines)])
        self.orders, self.lines, self.pending = [], [], 0

    def complete(self, session: Session, workspace_id: int) -> bool:
        """Whether the workspace holds exactly these orders (nothing else wrote orders meanwhile)."""
        return order_bulk.count_orders(session, workspace_id=workspace_id) == self.count

    def combined(self) -> rollups.RollupParts:
        """The parts of every order loaded, merged customers' orders counted for their survivors."""
        self._fold()
        return self.parts.following({merged: self._survivor(merged) for merged in self.merged_into})

    def _survivor(self, customer_id: int) -> int:
        seen = {customer_id}
        while customer_id in self.merged_into:
            customer_id = self.merged_into[customer_id]
            if customer_id in seen:
                break
            seen.add(customer_id)
        return customer_id


# orders kept as they are before they are folded into per-customer parts (~20 MB)
_FOLD_ORDERS = 250_000
_EMPTY_ORDERS = pl.DataFrame(
    schema={
        "id": pl.Int64(),
        "customer_id": pl.Int64(),
        "channel_id": pl.Int64(),
        "placed_at": pl.Datetime("us", "UTC"),
        "status": pl.Utf8(),
        "paid_cents": pl.Int64(),
        "refunded_cents": pl.Int64(),
    }
)
_EMPTY_LINES = pl.DataFrame(schema={"order_id": pl.Int64(), "category": pl.Utf8()})


# --- stage: chunks and references -------------------------------------------------------------------


def _chunks(rows: pl.DataFrame, kind: ImportKind, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Slices of about `chunk_rows` rows; the rows of one order always stay in one slice."""
    if rows.height <= chunk_rows:
        yield rows
        return
    if kind == ImportKind.ORDERS and "external_id" in rows.columns:
        first_row = pl.col("_row").min().over("external_id")
        tagged = rows.with_row_index("_row").with_columns((first_row // chunk_rows).alias("_chunk"))
        for _, part in tagged.group_by("_chunk", maintain_order=True):
            yield part.drop("_chunk", "_row")
        return
    for start in range(0, rows.height, chunk_rows):
        yield rows.slice(start, chunk_rows)


def _resolve_references(
    chunk: pl.DataFrame, ctx: _Context, kind: ImportKind, source_of_field: dict[str, str]
) -> tuple[pl.DataFrame, list[Reject]]:
    """Channel keys, store codes and owner emails → ids; rows naming unknown ones are refused."""
    lookups: list[tuple[str, str, dict[str, int], str]] = [
        (
            "channel",
            "channel_id",
            ctx.channel_ids,
            "unknown channel: add it on the channels page or fix the value",
        ),
        ("store", "store_id", ctx.store_ids, "unknown store code: add the store first or fix the code"),
    ]
    if kind == ImportKind.CUSTOMERS:
        lookups.append(
            (
                "owner_email",
                "owner_user_id",
                ctx.owner_ids,
                "owner is not a member of this workspace: invite them first or fix the email",
            )
        )
    rejects: list[Reject] = []
    bad = pl.lit(False)
    for column, id_column, ids, reason in lookups:
        if column not in chunk.columns:
            chunk = chunk.with_columns(pl.lit(None, pl.Int64).alias(id_column))
            continue
        values = chunk[column]
        mapping = {v: ids.get(v, ids.get(v.lower())) for v in values.drop_nulls().unique()}
        chunk = chunk.with_columns(
            pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.Int64).alias(id_column)
        )
        missing = pl.col(column).is_not_null() & pl.col(id_column).is_null()
        for row_number, value in chunk.filter(missing).select("row_number", column).iter_rows():
            rejects.append(Reject(row_number, source_of_field.get(column, column), str(value), reason))
        bad = bad | missing
    return chunk.filter(~bad), rejects


# --- resolve identities -----------------------------------------------------------------------------


_CANONICAL_CN_MOBILE = r"^\+861[3-9][0-9]{9}$"


def _junk_values(values: pl.Series, kind: str, ctx: _Context) -> list[str]:
    """The distinct values of `values` that are junk for `kind` or denylisted.

    Canonical CN mobiles (the bulk of most files) are checked column-wise against the same test-number
    lists `identity_values` uses; every other value goes through `identity_values.is_junk`.
    """
    distinct = values.drop_nulls().unique()
    denied = ctx.denied(kind)
    junk = distinct.filter(distinct.is_in(list(denied))).to_list() if denied else []
    if kind == identity_values.PHONE:
        mobile = distinct.str.contains(_CANONICAL_CN_MOBILE)
        national = distinct.filter(mobile).str.slice(3)
        bad = national.is_in(list(identity_values.JUNK_PHONE_NUMBERS)) | national.str.contains_any(
            list(identity_values.JUNK_PHONE_SUBSTRINGS)
        )
        junk += ("+86" + national.filter(bad)).to_list()
        distinct = distinct.filter(~mobile)
    junk += [v for v in distinct.to_list() if identity_values.is_junk(kind, v)]
    return junk


def _clean_identities(chunk: pl.DataFrame, ctx: _Context, columns: dict[str, str]) -> pl.DataFrame:
    """Junk and denylisted values never identify anyone: they become null before resolution."""
    chunk = chunk.with_columns(
        [pl.col(c).cast(pl.Utf8).str.strip_chars().replace("", None).alias(c) for c in columns]
    )
    exprs = []
    for column, kind in columns.items():
        junk = _junk_values(chunk[column], kind, ctx)
        if junk:
            exprs.append(
                pl.when(pl.col(column).is_in(junk)).then(None).otherwise(pl.col(column)).alias(column)
            )
    return chunk.with_columns(exprs) if exprs else chunk


def _resolve_identities(
    session: Session,
    chunk: pl.DataFrame,
    ctx: _Context,
    kind: ImportKind,
    source: str,
    actor_user_id: int | None,
) -> tuple[pl.DataFrame, identity.Resolution]:
    """Adds `customer_id` and `_identity_key` ("kind:value" of the first key) to every row.

    Rows are grouped by the identity keys they carry. Groups with several keys, and groups with one key
    that such a group also carries, go through `identity.resolve_key_groups` (linking, merges, reviews);
    the rest, usually nearly all, carry one key that links nothing and resolve set-based
    (`identity.resolve_single_keys`), after the others, whose merges they must see.
    """
    columns = identity_columns(chunk)
    chunk = _clean_identities(chunk, ctx, columns)
    if not columns:
        empty = identity.Resolution(customer_ids=[])
        return chunk.with_columns(
            pl.lit(None, pl.Int64).alias("customer_id"), pl.lit("", pl.Utf8).alias("_identity_key")
        ), empty
    time_field = _TIME_FIELD[kind]
    at = pl.col(time_field) if time_field in chunk.columns else pl.lit(None, pl.Datetime("us", "UTC"))
    chunk = chunk.with_columns(
        pl.concat_str([pl.col(c).fill_null("") for c in columns], separator="\x1f").alias("_key"),
        at.alias("_at"),
    )
    per_key = (
        chunk.group_by("_key", maintain_order=True)
        .agg(
            *[pl.col(c).first() for c in columns],
            pl.col("_at").min().alias("_first_at"),
            pl.col("channel_id").sort_by("_at", nulls_last=True).drop_nulls().first().alias("_channel_id"),
        )
        .with_columns(
            pl.sum_horizontal([pl.col(c).is_not_null() for c in columns]).alias("_keys"),
            # the one key of a single-key group (unused for groups with several)
            pl.coalesce([pl.when(pl.col(c).is_not_null()).then(pl.lit(k)) for c, k in columns.items()]).alias(
                "_kind"
            ),
            pl.coalesce([pl.col(c) for c in columns]).alias("_value"),
        )
    )
    multi = per_key.filter(pl.col("_keys") > 1)
    multi_keys = pl.concat(
        [multi.select("_key", pl.lit(k).alias("kind"), pl.col(c).alias("value")) for c, k in columns.items()]
    ).drop_nulls("value")
    linked = multi_keys.select("kind", "value")
    single = per_key.filter(pl.col("_keys") == 1)
    key, linked_key = ["_kind", "_value"], ["kind", "value"]

    # groups of several keys sharing none with another group of the batch and none known: new people,
    # created set-based (in a first import, nearly every customers row); the rest are linked below
    shared = (
        pl.concat([linked, single.select(pl.col("_kind").alias("kind"), pl.col("_value").alias("value"))])
        .group_by("kind", "value")
        .len()
        .filter(pl.col("len") > 1)
    )
    apart = multi.join(
        multi_keys.join(shared, on=linked_key, how="semi").select("_key"), on="_key", how="anti"
    )
    created_apart, _linked = identity.resolve_unlinked_groups(
        session,
        workspace_id=ctx.workspace_id,
        groups=apart.select(
            pl.col("_key").alias("_group"),
            pl.col("_first_at").alias("first_at"),
            pl.col("_channel_id").alias("first_channel_id"),
        ),
        keys=multi_keys.join(apart.select("_key"), on="_key", how="semi").rename({"_key": "_group"}),
        source=source,
        resolved=ctx.resolved_keys,
    )
    apart = apart.join(created_apart.rename({"_group": "_key"}), on="_key")
    multi = multi.join(apart.select("_key"), on="_key", how="anti")

    grouped = pl.concat([multi, single.join(linked.unique(), how="semi", left_on=key, right_on=linked_key)])
    alone = single.join(linked, how="anti", left_on=key, right_on=linked_key)

    groups: list[identity.KeyGroup] = []
    first_keys: list[str] = []
    kinds = list(columns.values())
    for row in grouped.select(*columns, "_first_at", "_channel_id").iter_rows():
        keys = sorted(
            ((kinds[i], value) for i, value in enumerate(row[: len(kinds)]) if value is not None),
            key=lambda k: identity.key_order(k[0]),
        )
        groups.append(identity.KeyGroup(keys=keys, first_at=row[-2], first_channel_id=row[-1]))
        first_keys.append(f"{keys[0][0]}:{keys[0][1]}")
    resolution = identity.resolve_key_groups(
        session, workspace_id=ctx.workspace_id, groups=groups, source=source, actor_user_id=actor_user_id
    )
    if resolution.merged_into:
        ctx.resolved_keys = ctx.resolved_keys.with_columns(
            pl.col("customer_id").replace(resolution.merged_into).cast(pl.Int64)
        )
    single_keys = alone.select(
        pl.col("_kind").alias("kind"),
        pl.col("_value").alias("value"),
        pl.col("_first_at").alias("first_at"),
        pl.col("_channel_id").alias("first_channel_id"),
    )
    alone_ids, created = identity.resolve_single_keys(
        session,
        workspace_id=ctx.workspace_id,
        keys=single_keys,
        source=source,
        resolved=ctx.resolved_keys,
    )
    fresh = pl.concat(
        [
            single_keys.select("kind", "value", alone_ids.alias("customer_id")),
            multi_keys.join(apart.select("_key", "customer_id"), on="_key").select(
                "kind", "value", "customer_id"
            ),
        ]
    )
    ctx.resolved_keys = pl.concat([ctx.resolved_keys.join(fresh, on=["kind", "value"], how="anti"), fresh])
    created += apart["customer_id"].to_list()
    resolution.created_ids += created
    resolution.touched_ids.update(created)
    by_priority = sorted(columns.items(), key=lambda item: identity.key_order(item[1]))
    resolved = pl.concat(
        [
            grouped.select(
                "_key",
                pl.Series("customer_id", resolution.customer_ids, dtype=pl.Int64),
                pl.Series("_identity_key", first_keys, dtype=pl.Utf8),
            ),
            alone.select(
                "_key",
                alone_ids.alias("customer_id"),
                pl.concat_str([pl.col("_kind"), pl.col("_value")], separator=":").alias("_identity_key"),
            ),
            apart.select(
                "_key",
                "customer_id",
                pl.coalesce([pl.concat_str([pl.lit(f"{k}:"), pl.col(c)]) for c, k in by_priority]).alias(
                    "_identity_key"
                ),
            ),
        ]
    )
    chunk = (
        chunk.join(resolved, on="_key", how="left", maintain_order="left")
        .with_columns(pl.col("_identity_key").fill_null(""))
        .drop("_key", "_at")
    )
    return chunk, resolution


# --- orders and lines -------------------------------------------------------------------------------


def _col(chunk: pl.DataFrame, name: str, dtype: Any) -> pl.Expr:
    return pl.col(name).cast(dtype) if name in chunk.columns else pl.lit(None, dtype).alias(name)


def _load_orders(
    session: Session,
    chunk: pl.DataFrame,
    ctx: _Context,
    source: str,
    result: LoadResult,
    loaded: _LoadedOrders | None = None,
) -> set[int]:
    """Order fields come from the last row of each order number; line fields from every row that has them."""
    frame = chunk.select(
        pl.col("external_id").cast(pl.Utf8),
        pl.col("customer_id"),
        pl.col("channel_id"),
        pl.col("store_id"),
        _col(chunk, "status", pl.Utf8).fill_null("paid"),
        _col(chunk, "currency", pl.Utf8).fill_null(ctx.currency).str.to_uppercase(),
        _col(chunk, "paid_cents", pl.Int64).fill_null(0),
        _col(chunk, "discount_cents", pl.Int64).fill_null(0),
        _col(chunk, "total_cents", pl.Int64),
        _col(chunk, "refunded_cents", pl.Int64).fill_null(0),
        pl.col("placed_at").cast(pl.Datetime("us", "UTC")),
        *[
            _col(chunk, c, pl.Utf8 if c in ("sku", "product_name", "category") else pl.Int64)
            for c in _LINE_FIELDS
        ],
        _col(chunk, "line_no", pl.Int64),
    ).with_columns(pl.col("total_cents").fill_null(pl.col("paid_cents") + pl.col("discount_cents")))
    orders = frame.group_by("external_id", maintain_order=True).agg(
        pl.col("customer_id").drop_nulls().last(),
        *[pl.col(c).last() for c in order_bulk.ORDER_COLUMNS if c != "customer_id"],
    )
    has_line = pl.any_horizontal([pl.col(c).is_not_null() for c in _LINE_FIELDS])
    lines = frame.filter(has_line).select(
        "external_id",
        "line_no",
        pl.col("sku").fill_null(""),
        pl.col("product_name").fill_null("").alias("name"),
        pl.col("category").fill_null(""),
        pl.col("quantity").fill_null(1),
        pl.col("unit_price_cents")
        .fill_null(pl.col("line_amount_cents") // pl.col("quantity").fill_null(1).clip(lower_bound=1))
        .fill_null(0),
        pl.col("line_amount_cents")
        .fill_null(pl.col("unit_price_cents") * pl.col("quantity").fill_null(1))
        .fill_null(0)
        .alias("amount_cents"),
    )
    upsert = order_bulk.upsert_orders(
        session,
        workspace_id=ctx.workspace_id,
        orders=orders,
        lines=lines,
        source=source,
        all_new=ctx.first_order_load,
    )
    result.inserted += upsert.inserted
    result.updated += upsert.updated
    result.unchanged += upsert.unchanged
    if loaded is not None:
        loaded.add(upsert.new_orders, upsert.new_lines)
    return upsert.touched_customer_ids


_COUPON_STATUSES = ("paid", "partially_refunded")


def _redeem_coupons(session: Session, chunk: pl.DataFrame, ctx: _Context, header: str) -> list[Reject]:
    """Redeem the coupons that paid orders of the chunk carry (a `coupon_code` column), on the amount
    before discounts; orders without one cost nothing here. A refused coupon leaves its order loaded
    and is reported on the coupon's column. Re-importing the same order answers with its redemption."""
    if "coupon_code" not in chunk.columns or chunk["coupon_code"].null_count() == chunk.height:
        return []
    rows = (
        chunk.filter(
            pl.col("coupon_code").is_not_null()
            & pl.col("customer_id").is_not_null()
            & _col(chunk, "status", pl.Utf8).fill_null("paid").is_in(_COUPON_STATUSES)
        )
        .select(
            "row_number",
            pl.col("external_id").cast(pl.Utf8),
            "customer_id",
            "coupon_code",
            pl.coalesce(
                _col(chunk, "total_cents", pl.Int64),
                _col(chunk, "paid_cents", pl.Int64).fill_null(0)
                + _col(chunk, "discount_cents", pl.Int64).fill_null(0),
            ).alias("amount_cents"),
        )
        .unique(subset=["external_id", "coupon_code"], keep="last", maintain_order=True)
    )
    refused = coupons.redeem_for_orders(session, workspace_id=ctx.workspace_id, rows=list(rows.iter_rows()))
    return [
        Reject(row_number, header, code, f"the order was loaded; its coupon was not redeemed: {why}")
        for row_number, code, why in refused
    ]


# --- events -----------------------------------------------------------------------------------------


def _properties(chunk: pl.DataFrame) -> pl.Series:
    """Canonical JSON text of each event's properties: the `properties` object plus `prop:*` columns."""
    prop_columns = [c for c in chunk.columns if c.startswith(PROPERTY_PREFIX)]
    base = chunk["properties"].to_list() if "properties" in chunk.columns else [None] * chunk.height
    extra = chunk.select(prop_columns).iter_rows() if prop_columns else iter([()] * chunk.height)
    out: list[str] = []
    for text_value, values in zip(base, extra, strict=True):
        props: dict[str, Any] = {}
        if text_value:
            parsed = json.loads(text_value) if isinstance(text_value, str) else text_value
            if isinstance(parsed, dict):
                props.update(parsed)
        for name, value in zip(prop_columns, values, strict=True):
            if value is not None:
                props[name[len(PROPERTY_PREFIX) :]] = value
        out.append(json.dumps(props, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str))
    return pl.Series("properties", out, dtype=pl.Utf8)


def _load_events(
    session: Session, chunk: pl.DataFrame, ctx: _Context, source: str, result: LoadResult
) -> set[int]:
    props = _properties(chunk)
    occurred = chunk["occurred_at"].cast(pl.Datetime("us", "UTC"))
    external = (
        chunk["external_id"].cast(pl.Utf8)
        if "external_id" in chunk.columns
        else pl.Series([None] * chunk.height, dtype=pl.Utf8)
    )
    keys = event_bulk.dedupe_keys(external, chunk["_identity_key"], chunk["type"], occurred, props)
    events = pl.DataFrame(
        {
            "customer_id": chunk["customer_id"],
            "type": chunk["type"].cast(pl.Utf8),
            "occurred_at": occurred,
            "properties": props,
            "source": chunk["source"].cast(pl.Utf8).fill_null(source)
            if "source" in chunk.columns
            else pl.Series([source] * chunk.height, dtype=pl.Utf8),
            "dedupe_key": keys,
        }
    )
    inserted = event_bulk.insert_events(session, workspace_id=ctx.workspace_id, events=events)
    result.inserted += inserted.inserted
    result.unchanged += inserted.unchanged
    return inserted.touched_customer_ids


# --- customers --------------------------------------------------------------------------------------

_PROFILE = ("name", "gender", "birthday", "city", "owner_user_id", "first_channel_id")


def _consent_status(value: Any) -> str | None:
    text = str(value).strip().lower()
    if text in _GRANTED:
        return ConsentStatus.GRANTED.value
    if text in _WITHDRAWN:
        return ConsentStatus.WITHDRAWN.value
    return None


def _load_customers(
    session: Session,
    chunk: pl.DataFrame,
    ctx: _Context,
    source: str,
    result: LoadResult,
    created: set[int],
) -> set[int]:
    """Profiles: a later non-empty value wins (within the batch, the last row of the customer; against the
    store, the incoming value), except that the first channel is only set when it is not set yet.
    `attr:*` columns update single keys of `attributes`; `consent:*` columns add a consent record only
    when the state in force changes, dated by `consent_at` when the file gives it (else now).
    Customers are few next to orders, so this step is a plain pass."""
    chunk = chunk.filter(pl.col("customer_id").is_not_null())
    if chunk.height == 0:
        return set()
    attr_columns = [c for c in chunk.columns if c.startswith(ATTRIBUTE_PREFIX)]
    consent_columns = [c for c in chunk.columns if c.startswith(CONSENT_PREFIX)]
    incoming = (
        chunk.select(
            "customer_id",
            _col(chunk, "name", pl.Utf8),
            _col(chunk, "gender", pl.Utf8),
            _col(chunk, "birthday", pl.Date),
            _col(chunk, "city", pl.Utf8),
            pl.col("owner_user_id"),
            pl.col("channel_id").alias("first_channel_id"),
            _col(chunk, "consent_at", pl.Datetime("us", "UTC")),
            *attr_columns,
            *consent_columns,
        )
        .group_by("customer_id", maintain_order=True)
        .agg(pl.all().drop_nulls().last())
    )

    ids = incoming["customer_id"].to_list()
    stored = {c["id"]: c for c in _customers(session, ids)}
    now = utcnow()
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for row in incoming.iter_rows(named=True):
        customer_id = row["customer_id"]
        current = stored[customer_id]
        new_values = {name: current[name] for name in (*_PROFILE, "attributes")}
        for name in ("name", "city", "birthday", "owner_user_id"):
            if row[name] is not None and row[name] != "":
                new_values[name] = row[name]
        if row["gender"] and row["gender"] != Gender.UNKNOWN:
            new_values["gender"] = row["gender"]
        if current["first_channel_id"] is None and row["first_channel_id"] is not None:
            new_values["first_channel_id"] = row["first_channel_id"]
        attributes = dict(current["attributes"])
        for column in attr_columns:
            if row[column] is not None:
                attributes[column[len(ATTRIBUTE_PREFIX) :]] = row[column]
        new_values["attributes"] = attributes
        changed = [name for name, value in new_values.items() if value != current[name]]
        if not changed:
            if customer_id not in created:
                result.unchanged += 1
            continue
        updates.append({"b_id": customer_id, **new_values, "updated_at": now})
        if customer_id in created:
            continue
        result.updated += 1
        events.append(
            {
                "workspace_id": ctx.workspace_id,
                "type": DomainEventType.CUSTOMER_UPDATED,
                "customer_id": customer_id,
                "payload": {"fields": sorted(changed), "source": source},
                "occurred_at": now,
            }
        )
        if "owner_user_id" in changed:
            events.append(
                {
                    "workspace_id": ctx.workspace_id,
                    "type": DomainEventType.OWNER_CHANGED,
                    "customer_id": customer_id,
                    "payload": {
                        "owner_user_id": new_values["owner_user_id"],
                        "previous": current["owner_user_id"],
                    },
                    "occurred_at": now,
                }
            )
    result.inserted += len(created & set(ids))
    if updates:
        _update_profiles(session, updates)
    events += _record_consents(session, incoming, consent_columns, ctx, source, now)
    record_many(session, events)
    return {u["b_id"] for u in updates}


_PROFILE_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "name": pl.Utf8(),
    "gender": pl.Utf8(),
    "birthday": pl.Date(),
    "city": pl.Utf8(),
    "owner_user_id": pl.Int64(),
    "first_channel_id": pl.Int64(),
    "attributes": pl.Utf8(),
    "updated_at": pl.Datetime("us", "UTC"),
}


def _update_profiles(session: Session, updates: list[dict[str, Any]]) -> None:
    """The new profile of each customer in `updates` (b_id and every profile column), as one UPDATE … FROM
    a staged copy: a first import updates the profile of every customer it creates."""
    frame = pl.DataFrame(
        {
            "id": [u["b_id"] for u in updates],
            **{name: [u[name] for u in updates] for name in _PROFILE},
            "attributes": [json.dumps(u["attributes"]) for u in updates],
            "updated_at": [u["updated_at"] for u in updates],
        },
        schema=_PROFILE_SCHEMA,
    )
    staged = bulk.stage(session, "stage_customer_profile", frame)
    attributes = "CAST(u.attributes AS jsonb)" if is_postgres(session) else "u.attributes"
    assignments = ", ".join(f"{name} = u.{name}" for name in (*_PROFILE, "updated_at"))
    session.execute(
        text(
            f"UPDATE customer SET {assignments}, attributes = {attributes} FROM {staged} u "
            "WHERE customer.id = u.id"
        )
    )
    bulk.drop_stage(session, staged)


def _customers(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), 5000):
        rows = session.execute(
            select(
                Customer.id,
                Customer.name,
                Customer.gender,
                Customer.birthday,
                Customer.city,
                Customer.owner_user_id,
                Customer.first_channel_id,
                Customer.attributes,
            ).where(Customer.id.in_(ids[start : start + 5000]))
        )
        out += [dict(r._mapping) | {"attributes": dict(r.attributes or {})} for r in rows]
    return out


def _record_consents(
    session: Session,
    incoming: pl.DataFrame,
    consent_columns: list[str],
    ctx: _Context,
    source: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """Consent records for the statuses that differ from the one in force, at the row's `consent_at`
    (the import's time when the file has none). A status dated before the decision in force is older
    news and is skipped: recording it would change nothing in force, and a re-import would add it again."""
    if not consent_columns:
        return []
    ids = incoming["customer_id"].to_list()
    in_force: dict[tuple[int, str], tuple[str, datetime]] = {}
    for start in range(0, len(ids), 5000):
        rows = session.execute(
            select(Consent.customer_id, Consent.contact_channel, Consent.status, Consent.occurred_at)
            .where(
                Consent.customer_id.in_(ids[start : start + 5000]),
                Consent.purpose == ConsentPurpose.MARKETING.value,
            )
            .order_by(Consent.occurred_at, Consent.id)
        )
        for customer_id, channel, status, occurred_at in rows:
            in_force[(customer_id, channel)] = (status, occurred_at)
    new_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for row in incoming.select("customer_id", "consent_at", *consent_columns).iter_rows(named=True):
        at = row["consent_at"] or now
        for column in consent_columns:
            status = _consent_status(row[column]) if row[column] is not None else None
            channel = column[len(CONSENT_PREFIX) :]
            current = in_force.get((row["customer_id"], channel))
            if status is None or (current is not None and (current[0] == status or at < current[1])):
                continue
            new_rows.append(
                {
                    "workspace_id": ctx.workspace_id,
                    "customer_id": row["customer_id"],
                    "contact_channel": channel,
                    "purpose": ConsentPurpose.MARKETING.value,
                    "status": status,
                    "source": source[:64],
                    "occurred_at": at,
                    "created_at": now,
                }
            )
            events.append(
                {
                    "workspace_id": ctx.workspace_id,
                    "type": DomainEventType.CONSENT_CHANGED,
                    "customer_id": row["customer_id"],
                    "payload": {"contact_channel": channel, "purpose": "marketing", "status": status},
                    "occurred_at": at,
                }
            )
    if new_rows:
        bulk.insert_frame(
            session,
            "consent",
            pl.DataFrame(
                new_rows,
                schema={
                    "workspace_id": pl.Int64,
                    "customer_id": pl.Int64,
                    "contact_channel": pl.Utf8,
                    "purpose": pl.Utf8,
                    "status": pl.Utf8,
                    "source": pl.Utf8,
                    "occurred_at": pl.Datetime("us", "UTC"),
                    "created_at": pl.Datetime("us", "UTC"),
                },
            ),
        )
    return events
