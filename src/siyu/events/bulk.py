"""Set-based insert of customer events for bulk loads, deduplicated so that a re-sent event lands once.

An event's `dedupe_key` is the SHA-256 of its external id when it has one, else of its content
(the customer's identity key, type, time and canonical properties).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import polars as pl
from sqlalchemy.orm import Session

from siyu.core import bulk
from siyu.core.domain_events import DomainEventType
from siyu.core.timeutil import utcnow

UTC_US = pl.Datetime("us", "UTC")


@dataclass
class EventInsert:
    inserted: int = 0
    unchanged: int = 0
    touched_customer_ids: set[int] = field(default_factory=set)


def dedupe_keys(
    external_ids: pl.Series,
    identity_keys: pl.Series,
    types: pl.Series,
    occurred_at: pl.Series,
    properties: pl.Series,
) -> pl.Series:
    """The dedupe key of each event: SHA-256 hex of "x" + external id, or of "c" + its content.

    `identity_keys` is the "kind:value" of the event's first identity key (empty when it has none), so
    that the key does not change when the customer is merged; `properties` is canonical JSON text.
    """
    times = occurred_at.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
    out: list[str] = []
    for ext, ident, type_, at, props in zip(
        external_ids.to_list(),
        identity_keys.to_list(),
        types.to_list(),
        times.to_list(),
        properties.to_list(),
        strict=True,
    ):
        material = "x\x1f" + ext if ext else "\x1f".join(("c", ident or "", type_, at, props or "{}"))
        out.append(hashlib.sha256(material.encode()).hexdigest())
    return pl.Series("dedupe_key", out, dtype=pl.Utf8)


def insert_events(session: Session, *, workspace_id: int, events: pl.DataFrame) -> EventInsert:
    """Insert the events not recorded yet (by `dedupe_key`) and an event.recorded domain event for each.

    `events` columns: customer_id, type, occurred_at, properties (JSON text), source, dedupe_key.
    """
    result = EventInsert()
    if events.height == 0:
        return result
    unique = events.unique(subset="dedupe_key", keep="first", maintain_order=True)
    stage = bulk.stage(session, "stage_event_key", unique.select("dedupe_key"))
    known = bulk.fetch_frame(
        session,
        f"SELECT e.dedupe_key FROM customer_event e JOIN {stage} s ON s.dedupe_key = e.dedupe_key "
        "WHERE e.workspace_id = :ws",
        {"ws": workspace_id},
        {"dedupe_key": pl.Utf8},
    )
    bulk.drop_stage(session, stage)
    new = unique.join(known, on="dedupe_key", how="anti")
    result.inserted = new.height
    result.unchanged = events.height - new.height
    if new.height == 0:
        return result
    now = utcnow()
    new = new.with_columns(
        pl.Series("id", bulk.reserve_ids(session, "customer_event", new.height), dtype=pl.Int64)
    )
    bulk.insert_frame(
        session,
        "customer_event",
        new.select(
            "id",
            pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
            "customer_id",
            "type",
            "occurred_at",
            "properties",
            pl.col("source").fill_null("").str.slice(0, 64),
            "dedupe_key",
            pl.lit(now, UTC_US).alias("created_at"),
        ),
    )
    bulk.insert_frame(
        session,
        "domain_event",
        new.select(
            pl.lit(workspace_id, pl.Int64).alias("workspace_id"),
            pl.lit(str(DomainEventType.EVENT_RECORDED)).alias("type"),
            "customer_id",
            pl.struct(pl.col("id").alias("event_id"), pl.col("type").alias("event_type"))
            .struct.json_encode()
            .alias("payload"),
            "occurred_at",
            pl.lit(now, UTC_US).alias("created_at"),
        ),
    )
    result.touched_customer_ids = set(new["customer_id"].drop_nulls().unique().to_list())
    return result
