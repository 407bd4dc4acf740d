"""Per-customer rollups (first/last order, counts, revenue, categories, channels, last event), set-based.

Loading refreshes the customers a batch touched; a full rebuild from raw orders yields the same rows.
A first load (every order of its customers is its own) computes their rollups in memory from what it
kept of its orders, per customer (`RollupParts`, `refresh_rollups_from_frames`), by the SQL statement's rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from siyu.core import bulk
from siyu.core.db import UTCDateTime, is_postgres
from siyu.core.timeutil import utcnow
from siyu.orders.models import PURCHASE_STATUSES, REVENUE_STATUSES

_PURCHASE = ", ".join(f"'{s.value}'" for s in PURCHASE_STATUSES)
_REVENUE = ", ".join(f"'{s.value}'" for s in REVENUE_STATUSES)
_STAGE = "stage_rollup_customer"
_ANALYZE_ABOVE = 5000


def _categories_sql(postgres: bool) -> tuple[str, str]:
    """(extra CTE, column expression) for the sorted distinct non-empty categories of a customer's purchases,
    as a JSON array in bytewise order on both engines (the same data gives the same array)."""
    if postgres:
        cte = f""",
cats AS (
    SELECT d.customer_id, jsonb_agg(d.category ORDER BY d.category COLLATE "C") AS categories
    FROM (SELECT DISTINCT o.customer_id, l.category FROM o JOIN order_line l ON l.order_id = o.id
          WHERE o.status IN ({_PURCHASE}) AND l.category <> '') d
    GROUP BY d.customer_id
)"""
        return cte, "coalesce(cats.categories, '[]'::jsonb)"
    # SQLite's json_group_array keeps the order of its input only within a per-customer subquery
    column = (
        "(SELECT json_group_array(d.category) FROM (SELECT DISTINCT l.category AS category "
        "FROM customer_order x JOIN order_line l ON l.order_id = x.id "
        f"WHERE x.customer_id = s.id AND x.status IN ({_PURCHASE}) AND l.category <> '' ORDER BY 1) d)"
    )
    return "", column


def _insert_sql_sqlite(scope: str) -> str:
    """The same rows as `_insert_sql`, shaped for SQLite: correlated subqueries that walk the
    (customer_id, placed_at) index, since SQLite joins materialised CTEs without an index."""
    _, categories = _categories_sql(False)

    def channel(direction: str) -> str:
        return (
            "(SELECT x.channel_id FROM customer_order x WHERE x.customer_id = s.id "
            f"AND x.status IN ({_PURCHASE}) AND x.channel_id IS NOT NULL "
            f"ORDER BY x.placed_at {direction}, x.id {direction} LIMIT 1)"
        )

    return f"""
INSERT INTO customer_rollup (
    customer_id, workspace_id, first_order_at, last_order_at, order_count, gross_revenue_cents,
    refunded_cents, net_revenue_cents, avg_order_value_cents, categories, first_channel_id,
    last_channel_id, last_event_at, updated_at)
SELECT
    s.id, s.workspace_id, a.first_order_at, a.last_order_at, coalesce(a.order_count, 0),
    coalesce(a.gross, 0), coalesce(a.refunded, 0), coalesce(a.gross, 0) - coalesce(a.refunded, 0),
    CASE WHEN coalesce(a.order_count, 0) > 0
         THEN ((coalesce(a.gross, 0) - coalesce(a.refunded, 0)) * 2 + a.order_count) / (2 * a.order_count)
         ELSE 0 END,
    {categories},
    coalesce({channel("ASC")}, s.first_channel_id),
    coalesce({channel("DESC")}, s.first_channel_id),
    (SELECT max(e.occurred_at) FROM customer_event e WHERE e.customer_id = s.id),
    :now
FROM customer s
LEFT JOIN (
    SELECT o.customer_id AS customer_id,
           min(CASE WHEN o.status IN ({_PURCHASE}) THEN o.placed_at END) AS first_order_at,
           max(CASE WHEN o.status IN ({_PURCHASE}) THEN o.placed_at END) AS last_order_at,
           sum(CASE WHEN o.status IN ({_PURCHASE}) THEN 1 ELSE 0 END) AS order_count,
           sum(CASE WHEN o.status IN ({_REVENUE}) THEN o.paid_cents ELSE 0 END) AS gross,
           sum(CASE WHEN o.status IN ({_REVENUE}) THEN o.refunded_cents ELSE 0 END) AS refunded
    FROM customer_order o
    WHERE o.workspace_id = :ws AND {scope.replace("c.id", "o.customer_id")}
    GROUP BY o.customer_id
) a ON a.customer_id = s.id
WHERE s.workspace_id = :ws AND s.merged_into_id IS NULL AND {scope.replace("c.id", "s.id")}
"""


def _insert_sql(postgres: bool, scope: str) -> str:
    # Average order value = net revenue / purchase count, rounded half up to whole cents (net revenue is
    # never negative). First and last channel: of the first and last purchase with a channel (ties by
    # order id), else the customer's own first channel. Only live customers (not merged away) get a row.
    if not postgres:
        return _insert_sql_sqlite(scope)
    categories_cte, categories = _categories_sql(postgres)
    return f"""
WITH s AS (
    SELECT c.id, c.workspace_id, c.first_channel_id FROM customer c
    WHERE c.workspace_id = :ws AND c.merged_into_id IS NULL AND {scope}
),
o AS (
    SELECT o.id, o.customer_id, o.channel_id, o.placed_at, o.status, o.paid_cents, o.refunded_cents
    FROM customer_order o JOIN s ON s.id = o.customer_id
),
a AS (
    SELECT o.customer_id,
           min(CASE WHEN o.status IN ({_PURCHASE}) THEN o.placed_at END) AS first_order_at,
           max(CASE WHEN o.status IN ({_PURCHASE}) THEN o.placed_at END) AS last_order_at,
           CAST(sum(CASE WHEN o.status IN ({_PURCHASE}) THEN 1 ELSE 0 END) AS BIGINT) AS order_count,
           CAST(sum(CASE WHEN o.status IN ({_REVENUE}) THEN o.paid_cents ELSE 0 END) AS BIGINT) AS gross,
           CAST(sum(CASE WHEN o.status IN ({_REVENUE}) THEN o.refunded_cents ELSE 0 END) AS BIGINT) AS refunded
    FROM o GROUP BY o.customer_id
),
r AS (
    SELECT o.customer_id, o.channel_id,
           row_number() OVER (PARTITION BY o.customer_id ORDER BY o.placed_at, o.id) AS first_rank,
           row_number() OVER (PARTITION BY o.customer_id ORDER BY o.placed_at DESC, o.id DESC) AS last_rank
    FROM o WHERE o.status IN ({_PURCHASE}) AND o.channel_id IS NOT NULL
),
ch AS (
    SELECT r.customer_id,
           max(CASE WHEN r.first_rank = 1 THEN r.channel_id END) AS first_channel_id,
           max(CASE WHEN r.last_rank = 1 THEN r.channel_id END) AS last_channel_id
    FROM r WHERE r.first_rank = 1 OR r.last_rank = 1 GROUP BY r.customer_id
),
ev AS (
    SELECT e.customer_id, max(e.occurred_at) AS last_event_at
    FROM customer_event e JOIN s ON s.id = e.customer_id GROUP BY e.customer_id
){categories_cte}
INSERT INTO customer_rollup (
    customer_id, workspace_id, first_order_at, last_order_at, order_count, gross_revenue_cents,
    refunded_cents, net_revenue_cents, avg_order_value_cents, categories, first_channel_id,
    last_channel_id, last_event_at, updated_at)
SELECT
    s.id, s.workspace_id, a.first_order_at, a.last_order_at, coalesce(a.order_count, 0),
    coalesce(a.gross, 0), coalesce(a.refunded, 0), coalesce(a.gross, 0) - coalesce(a.refunded, 0),
    CASE WHEN coalesce(a.order_count, 0) > 0
         THEN ((coalesce(a.gross, 0) - coalesce(a.refunded, 0)) * 2 + a.order_count) / (2 * a.order_count)
         ELSE 0 END,
    {categories},
    coalesce(ch.first_channel_id, s.first_channel_id),
    coalesce(ch.last_channel_id, s.first_channel_id),
    ev.last_event_at,
    :now
FROM s
LEFT JOIN a ON a.customer_id = s.id
LEFT JOIN ch ON ch.customer_id = s.id
LEFT JOIN ev ON ev.customer_id = s.id{" LEFT JOIN cats ON cats.customer_id = s.id" if postgres else ""}
"""


def _run(session: Session, sql: str, workspace_id: int) -> None:
    statement = text(sql).bindparams(bindparam("now", type_=UTCDateTime()))
    session.execute(statement, {"ws": workspace_id, "now": utcnow()})


def refresh_rollups(session: Session, *, workspace_id: int, customer_ids: Iterable[int]) -> int:
    """Recompute the rollups of exactly these customers from their orders and events; returns how many.

    A customer merged away loses its rollup row; every live customer gets one (zeros without orders).
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    postgres = is_postgres(session)
    if postgres and len(ids) >= _ANALYZE_ABOVE:
        # a bulk load just wrote these tables in this transaction: without fresh statistics the planner
        # takes them for tiny and picks nested loops that take minutes instead of seconds
        for table in ("customer", "identity", "customer_order", "order_line", "customer_event"):
            session.execute(text(f"ANALYZE {table}"))
    bulk.stage(session, _STAGE, pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.Int64}))
    scope = f"c.id IN (SELECT customer_id FROM {_STAGE})"
    session.execute(
        text(
            f"DELETE FROM customer_rollup WHERE workspace_id = :ws AND customer_id IN (SELECT customer_id FROM {_STAGE})"
        ),
        {"ws": workspace_id},
    )
    _run(session, _insert_sql(postgres, scope), workspace_id)
    bulk.drop_stage(session, _STAGE)
    return len(ids)


def rebuild_rollups(session: Session, *, workspace_id: int) -> int:
    """Recompute every rollup of the workspace from raw orders and events; returns the row count."""
    session.execute(text("DELETE FROM customer_rollup WHERE workspace_id = :ws"), {"ws": workspace_id})
    _run(session, _insert_sql(is_postgres(session), "1 = 1"), workspace_id)
    return int(
        session.execute(
            text("SELECT count(*) FROM customer_rollup WHERE workspace_id = :ws"), {"ws": workspace_id}
        ).scalar_one()
    )


@dataclass
class RollupParts:
    """What the rollups need of some orders, small and per customer: `totals` (first and last purchase,
    counts, revenue), `channels` (the first and last purchase with a channel: customer_id, placed_at, id,
    channel_id) and `categories` (distinct customer_id, category of purchases). Parts of several sets of
    orders combine into the parts of their union, so a load keeps these instead of its orders."""

    totals: pl.DataFrame
    channels: pl.DataFrame
    categories: pl.DataFrame

    @property
    def height(self) -> int:
        return self.totals.height + self.channels.height + self.categories.height

    @classmethod
    def of(cls, orders: pl.DataFrame, lines: pl.DataFrame) -> RollupParts:
        """The parts of `orders` (id, customer_id, channel_id, placed_at, status, paid_cents,
        refunded_cents) and their `lines` (order_id, category)."""
        purchase = pl.col("status").is_in([s.value for s in PURCHASE_STATUSES])
        revenue = pl.col("status").is_in([s.value for s in REVENUE_STATUSES])
        totals = orders.group_by("customer_id").agg(
            pl.col("placed_at").filter(purchase).min().alias("first_order_at"),
            pl.col("placed_at").filter(purchase).max().alias("last_order_at"),
            purchase.sum().cast(pl.Int64).alias("order_count"),
            pl.col("paid_cents").filter(revenue).sum().cast(pl.Int64).alias("gross_revenue_cents"),
            pl.col("refunded_cents").filter(revenue).sum().cast(pl.Int64).alias("refunded_cents"),
        )
        channels = orders.filter(purchase & pl.col("channel_id").is_not_null()).select(
            "customer_id", "placed_at", "id", "channel_id"
        )
        categories = (
            lines.filter(pl.col("category").is_not_null() & (pl.col("category") != ""))
            .join(
                orders.filter(purchase).select(pl.col("id").alias("order_id"), "customer_id"), on="order_id"
            )
            .select("customer_id", "category")
        )
        return cls(totals, channels, categories)._compact()

    def combine(self, others: list[RollupParts]) -> RollupParts:
        """The parts of the union of these parts' orders."""
        parts = [self, *others]
        return RollupParts(
            pl.concat([p.totals for p in parts]),
            pl.concat([p.channels for p in parts]),
            pl.concat([p.categories for p in parts]),
        )._compact()

    def following(self, survivor: dict[int, int]) -> RollupParts:
        """The parts with merged customers' orders counted for the customer they were merged into."""
        if not survivor:
            return self

        def moved(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.with_columns(pl.col("customer_id").replace(survivor).cast(pl.Int64))

        return RollupParts(moved(self.totals), moved(self.channels), moved(self.categories))._compact()

    def _compact(self) -> RollupParts:
        totals = self.totals.group_by("customer_id").agg(
            pl.col("first_order_at").min(),
            pl.col("last_order_at").max(),
            pl.col("order_count").sum(),
            pl.col("gross_revenue_cents").sum(),
            pl.col("refunded_cents").sum(),
        )
        # the first and the last of each customer's rows stand for all of them (ties by order id)
        ordered = self.channels.sort("customer_id", "placed_at", "id")
        channels = pl.concat(
            [
                ordered.group_by("customer_id", maintain_order=True).first(),
                ordered.group_by("customer_id", maintain_order=True).last(),
            ]
        ).unique()
        return RollupParts(totals, channels, self.categories.unique())


def empty_rollup_parts() -> RollupParts:
    """The parts of no order."""
    return RollupParts.of(
        pl.DataFrame(
            schema={
                "id": pl.Int64,
                "customer_id": pl.Int64,
                "channel_id": pl.Int64,
                "placed_at": pl.Datetime("us", "UTC"),
                "status": pl.Utf8,
                "paid_cents": pl.Int64,
                "refunded_cents": pl.Int64,
            }
        ),
        pl.DataFrame(schema={"order_id": pl.Int64, "category": pl.Utf8}),
    )


def refresh_rollups_from_frames(
    session: Session,
    *,
    workspace_id: int,
    customer_ids: Iterable[int],
    parts: RollupParts,
) -> int:
    """Recompute the rollups of these customers from `parts` in memory; returns how many.

    `parts` must come from every stored order of these customers and every line of those orders: the
    caller knows it when the workspace had no order before its load. The rows equal what
    `refresh_rollups` computes from the tables (`tests/customers/test_rollups.py` checks it); customer
    fields (first channel, merged or not) and the last event come from the tables.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    bulk.stage(session, _STAGE, pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.Int64}))
    customers = bulk.fetch_frame(
        session,
        f"SELECT c.id AS customer_id, c.first_channel_id FROM customer c JOIN {_STAGE} s "
        "ON s.customer_id = c.id WHERE c.workspace_id = :ws AND c.merged_into_id IS NULL",
        {"ws": workspace_id},
        {"customer_id": pl.Int64, "customer_first_channel_id": pl.Int64},
    )
    last_events = bulk.fetch_frame(
        session,
        f"SELECT e.customer_id, max(e.occurred_at) AS last_event_at FROM customer_event e "
        f"JOIN {_STAGE} s ON s.customer_id = e.customer_id GROUP BY e.customer_id",
        {},
        {"customer_id": pl.Int64, "last_event_at": pl.Datetime("us", "UTC")},
    )
    session.execute(
        text(
            f"DELETE FROM customer_rollup WHERE workspace_id = :ws AND customer_id IN (SELECT customer_id FROM {_STAGE})"
        ),
        {"ws": workspace_id},
    )
    bulk.drop_stage(session, _STAGE)
    rows = _rollup_rows(customers, parts).join(last_events, on="customer_id", how="left")
    bulk.insert_frame(
        session,
        "customer_rollup",
        rows.select(
            "customer_id",
            pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
            "first_order_at",
            "last_order_at",
            "order_count",
            "gross_revenue_cents",
            "refunded_cents",
            "net_revenue_cents",
            "avg_order_value_cents",
            "categories",
            "first_channel_id",
            "last_channel_id",
            "last_event_at",
            pl.lit(utcnow(), pl.Datetime("us", "UTC")).alias("updated_at"),
        ),
    )
    return rows.height


def _rollup_rows(customers: pl.DataFrame, parts: RollupParts) -> pl.DataFrame:
    """The rollup columns of `customers` (customer_id, customer_first_channel_id) from their orders' parts,
    by the rules of `_insert_sql`."""
    totals = parts.totals.join(customers.select("customer_id"), on="customer_id", how="semi")
    # first and last purchase with a channel; ties by order id
    channels = (
        parts.channels.sort("customer_id", "placed_at", "id")
        .group_by("customer_id")
        .agg(
            pl.col("channel_id").first().alias("_first_channel"),
            pl.col("channel_id").last().alias("_last_channel"),
        )
    )
    # distinct non-empty categories of purchases, bytewise sorted, as a JSON array
    categories = (
        parts.categories.with_columns(
            pl.struct(pl.col("category").alias("c"))
            .struct.json_encode()
            .str.strip_prefix('{"c":')
            .str.strip_suffix("}")
            .alias("_quoted")
        )
        .group_by("customer_id")
        .agg(pl.col("_quoted").sort_by("category").str.join(",").alias("_categories"))
    )
    count = pl.col("order_count")
    net = pl.col("net_revenue_cents")
    # ((net * 2 + count) / (2 * count)) in SQL integer division, which truncates towards zero
    numerator = net * 2 + count
    average = (
        pl.when(count > 0)
        .then(
            pl.when(numerator >= 0).then(numerator // (2 * count)).otherwise(-((-numerator) // (2 * count)))
        )
        .otherwise(0)
    )
    return (
        customers.join(totals, on="customer_id", how="left")
        .join(channels, on="customer_id", how="left")
        .join(categories, on="customer_id", how="left")
        .with_columns(
            pl.col("order_count").fill_null(0),
            pl.col("gross_revenue_cents").fill_null(0),
            pl.col("refunded_cents").fill_null(0),
        )
        .with_columns((pl.col("gross_revenue_cents") - pl.col("refunded_cents")).alias("net_revenue_cents"))
        .with_columns(
            average.cast(pl.Int64).alias("avg_order_value_cents"),
            ("[" + pl.col("_categories").fill_null("") + "]").alias("categories"),
            pl.coalesce("_first_channel", "customer_first_channel_id").alias("first_channel_id"),
            pl.coalesce("_last_channel", "customer_first_channel_id").alias("last_channel_id"),
        )
    )
