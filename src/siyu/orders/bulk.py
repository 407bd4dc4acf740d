"""Set-based upsert of orders and their lines for bulk loads, with the domain events of every change.

An order is keyed by (workspace, external id): new ones are inserted, changed ones updated, the same ones
left untouched (no row, no event, no `updated_at` change), so loading a file twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from siyu.core import bulk
from siyu.core.db import UTCDateTime
from siyu.core.domain_events import DomainEventType
from siyu.core.timeutil import utcnow
from siyu.orders.models import OrderStatus

UTC_US = pl.Datetime("us", "UTC")
# Order fields a later record may change; compared null-safely to decide updated vs unchanged.
ORDER_COLUMNS: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(),
    "channel_id": pl.Int64(),
    "store_id": pl.Int64(),
    "status": pl.Utf8(),
    "currency": pl.Utf8(),
    "total_cents": pl.Int64(),
    "discount_cents": pl.Int64(),
    "paid_cents": pl.Int64(),
    "refunded_cents": pl.Int64(),
    "placed_at": UTC_US,
}
LINE_COLUMNS: dict[str, pl.DataType] = {
    "line_no": pl.Int64(),
    "sku": pl.Utf8(),
    "name": pl.Utf8(),
    "category": pl.Utf8(),
    "quantity": pl.Int64(),
    "unit_price_cents": pl.Int64(),
    "amount_cents": pl.Int64(),
}
_REFUND_STATUSES = (OrderStatus.REFUNDED.value, OrderStatus.PARTIALLY_REFUNDED.value)


@dataclass
class OrderUpsert:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    touched_customer_ids: set[int] = field(default_factory=set)
    # the orders inserted (id, customer_id, channel_id, placed_at, status, paid_cents, refunded_cents)
    # and their lines (order_id, category): what rollups need when these are all the customers' orders
    new_orders: pl.DataFrame | None = None
    new_lines: pl.DataFrame | None = None


def _domain_events(workspace_id: int, frame: pl.DataFrame, type_expr: pl.Expr, now: datetime) -> pl.DataFrame:
    """Domain event rows for changed orders (`frame` has id, external_id, customer_id, status, paid/refunded)."""
    return frame.select(
        pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
        type_expr.alias("type"),
        pl.col("customer_id"),
        pl.struct(
            pl.col("id").alias("order_id"),
            "external_id",
            "status",
            "paid_cents",
            "refunded_cents",
            "channel_id",
        )
        .struct.json_encode()
        .alias("payload"),
        pl.col("placed_at").alias("occurred_at"),
        pl.lit(now, UTC_US).alias("created_at"),
    )


def workspace_has_orders(session: Session, *, workspace_id: int) -> bool:
    """Whether the workspace holds any order yet (a load into an empty one can skip comparisons)."""
    found = session.execute(
        text("SELECT 1 FROM customer_order WHERE workspace_id = :ws LIMIT 1"), {"ws": workspace_id}
    ).first()
    return found is not None


def count_orders(session: Session, *, workspace_id: int) -> int:
    """How many orders the workspace holds."""
    return int(
        session.execute(
            text("SELECT count(*) FROM customer_order WHERE workspace_id = :ws"), {"ws": workspace_id}
        ).scalar_one()
    )


def upsert_orders(
    session: Session,
    *,
    workspace_id: int,
    orders: pl.DataFrame,
    lines: pl.DataFrame,
    source: str,
    all_new: bool = False,
) -> OrderUpsert:
    """Insert new orders, update changed ones, and replace the lines of orders that come with line data.

    `orders`: one row per external id with `external_id` and `ORDER_COLUMNS` (a null `customer_id`,
    `channel_id` or `store_id` keeps the stored one). `lines`: `external_id` and `LINE_COLUMNS`, only for orders that carry line data.
    Emits order.placed for new orders, order.refunded when a refund grows or the status turns
    (partially) refunded, order.updated for any other change. `all_new` says the caller knows none of
    these external ids is stored (a first load into an empty workspace): the comparison read is skipped.
    """
    result = OrderUpsert()
    if orders.height == 0:
        return result
    now = utcnow()
    existing = pl.DataFrame(schema={"id": pl.Int64, "external_id": pl.Utf8, **ORDER_COLUMNS})
    if not all_new:
        stage = bulk.stage(session, "stage_order_key", orders.select("external_id"))
        existing = bulk.fetch_frame(
            session,
            f"SELECT o.id, o.external_id, {', '.join('o.' + c for c in ORDER_COLUMNS)} FROM customer_order o "
            f"JOIN {stage} s ON s.external_id = o.external_id WHERE o.workspace_id = :ws",
            {"ws": workspace_id},
            {"id": pl.Int64, "external_id": pl.Utf8, **ORDER_COLUMNS},
        )
        bulk.drop_stage(session, stage)

    new = orders.join(existing.select("external_id"), on="external_id", how="anti")
    both = orders.join(existing, on="external_id", how="inner", suffix="_old").with_columns(
        # a later file (a refund export, a status feed) often lacks these columns: absent is not "none"
        *(pl.coalesce(c, f"{c}_old").alias(c) for c in ("customer_id", "channel_id", "store_id"))
    )
    changed_field = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_old")) for c in ORDER_COLUMNS])

    # lines: an order coming with lines whose content differs from the stored lines gets them replaced
    lines = lines.with_columns(
        pl.col("line_no").fill_null(pl.int_range(1, pl.len() + 1).over("external_id")).cast(pl.Int64)
    )
    lines_changed_ids = _orders_with_changed_lines(session, both, lines)
    both = both.with_columns(
        (changed_field | pl.col("id").is_in(lines_changed_ids.implode())).alias("_changed"),
        changed_field.alias("_order_changed"),
    )
    changed = both.filter(pl.col("_changed"))
    result.unchanged = both.height - changed.height
    result.updated = changed.height
    result.inserted = new.height

    # new orders
    new_ids = bulk.reserve_ids(session, "customer_order", new.height)
    new = new.with_columns(pl.Series("id", new_ids, dtype=pl.Int64))
    bulk.insert_frame(
        session,
        "customer_order",
        new.select(
            "id",
            pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
            "external_id",
            *[c for c in ORDER_COLUMNS],
            pl.lit(now, UTC_US).alias("updated_at"),
            pl.lit(source[:32]).alias("source"),
        ),
    )

    # changed orders: one UPDATE … FROM a staged copy of their new values
    order_updates = changed.filter(pl.col("_order_changed"))
    if order_updates.height:
        upd = bulk.stage(
            session,
            "stage_order_update",
            order_updates.select("id", *ORDER_COLUMNS, pl.lit(now, UTC_US).alias("updated_at")),
        )
        assignments = ", ".join(f"{c} = u.{c}" for c in [*ORDER_COLUMNS, "updated_at"])
        session.execute(
            text(f"UPDATE customer_order SET {assignments} FROM {upd} u WHERE customer_order.id = u.id")
        )
        bulk.drop_stage(session, upd)
    line_only = changed.filter(~pl.col("_order_changed"))
    if line_only.height:
        touch = bulk.stage(session, "stage_order_touch", line_only.select("id"))
        session.execute(
            text(
                f"UPDATE customer_order SET updated_at = :now WHERE id IN (SELECT id FROM {touch})"
            ).bindparams(bindparam("now", type_=UTCDateTime())),
            {"now": now},
        )
        bulk.drop_stage(session, touch)

    # lines of new orders, and replaced lines of changed ones
    if lines_changed_ids.len():
        gone = bulk.stage(session, "stage_order_lines_gone", pl.DataFrame({"id": lines_changed_ids}))
        session.execute(text(f"DELETE FROM order_line WHERE order_id IN (SELECT id FROM {gone})"))
        bulk.drop_stage(session, gone)
    target_ids = pl.concat(
        [
            new.select("external_id", "id"),
            changed.filter(pl.col("id").is_in(lines_changed_ids.implode())).select("external_id", "id"),
        ]
    )
    line_rows = lines.join(target_ids, on="external_id", how="inner")
    result.new_orders = new.select(
        "id", "customer_id", "channel_id", "placed_at", "status", "paid_cents", "refunded_cents"
    )
    result.new_lines = line_rows.join(new.select("id"), on="id", how="semi").select(
        pl.col("id").alias("order_id"), "category"
    )
    bulk.insert_frame(
        session,
        "order_line",
        line_rows.select(
            pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
            pl.col("id").alias("order_id"),
            *[pl.col(c) for c in LINE_COLUMNS],
        ),
    )

    # domain events
    refund_grew = (pl.col("refunded_cents").fill_null(0) > pl.col("refunded_cents_old").fill_null(0)) | (
        pl.col("status").is_in(_REFUND_STATUSES) & ~pl.col("status_old").is_in(_REFUND_STATUSES)
    )
    events = [
        _domain_events(workspace_id, new, pl.lit(str(DomainEventType.ORDER_PLACED)), now),
        _domain_events(
            workspace_id,
            changed,
            pl.when(refund_grew)
            .then(pl.lit(str(DomainEventType.ORDER_REFUNDED)))
            .otherwise(pl.lit(str(DomainEventType.ORDER_UPDATED))),
            now,
        ),
    ]
    bulk.insert_frame(session, "domain_event", pl.concat(events))

    result.touched_customer_ids = {
        c
        for c in pl.concat([new["customer_id"], changed["customer_id"], changed["customer_id_old"]])
        .drop_nulls()
        .unique()
    }
    return result


def _orders_with_changed_lines(session: Session, both: pl.DataFrame, lines: pl.DataFrame) -> pl.Series:
    """Ids of existing orders whose incoming lines differ from their stored lines."""
    incoming = lines.join(both.select("external_id", "id"), on="external_id", how="inner")
    if incoming.height == 0:
        return pl.Series("id", [], dtype=pl.Int64)
    ids = incoming.select("id").unique()
    stage = bulk.stage(session, "stage_order_line_key", ids)
    stored = bulk.fetch_frame(
        session,
        f"SELECT l.order_id AS id, {', '.join('l.' + c for c in LINE_COLUMNS)} "
        f"FROM order_line l JOIN {stage} s ON s.id = l.order_id",
        {},
        {"id": pl.Int64, **LINE_COLUMNS},
    )
    bulk.drop_stage(session, stage)

    def signature(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.sort("id", "line_no")
            .with_columns(
                pl.concat_str(
                    [pl.col(c).cast(pl.Utf8).fill_null("\x00") for c in LINE_COLUMNS], separator="\x1f"
                ).alias("_line")
            )
            .group_by("id")
            .agg(pl.col("_line").str.join("\x1e").alias("_sig"))
        )

    compared = signature(incoming.select("id", *LINE_COLUMNS)).join(
        signature(stored), on="id", how="left", suffix="_old"
    )
    return compared.filter(pl.col("_sig").ne_missing(pl.col("_sig_old")))["id"]
