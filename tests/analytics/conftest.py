"""Fixtures: one SparkSession (local mode) for every Spark test of the run, and a generated brand per
store engine exported to Parquet and opened on Spark."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from siyu.analytics import service as analytics
from siyu.auth import service as auth
from siyu.auth.service import Actor
from siyu.core.db import Database
from siyu.customers import service as customers
from siyu.demo import service as demo
from siyu.lifecycle import service as lifecycle
from siyu.reach import service as reach
from siyu.reach.adapters.base import SendResult
from tests.factories import make_customer, make_order, unique

CUSTOMERS = 300
# small data: a few shuffle partitions keep each statement's task count (and its wall time) low
SPARK_CONF = {"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "1g"}
# the dormant customers the reactivation tests reach (the demo's own messages are still queued)
REACH_START = datetime(2026, 4, 1, tzinfo=UTC)
REACH_END = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def spark() -> Any:
    """The run's one SparkSession (local[2]); every export opens its own child session of it."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[dev]')")
    return analytics.spark_session(analytics.LOCAL_MASTER, conf=SPARK_CONF)


@dataclass(frozen=True)
class Brand:
    database: Database
    actor: Actor
    directory: Path
    spark_store: analytics.SparkStore


def _reach_dormant_customers(database: Database, *, workspace_id: int, actor: Actor, seed: int) -> None:
    """Customers who bought in early 2026, are dormant by May (the lifecycle sweep), get a message in
    April or May (sent through the gateway and the outbox) and in part buy again."""
    rng = random.Random(seed)
    with database.transaction() as session:
        bought: list[int] = []
        for _ in range(24):
            customer = make_customer(
                session, workspace_id=workspace_id, created_at=datetime(2025, 12, 1, tzinfo=UTC)
            )
            customers.record_system_consent(
                session,
                workspace_id=workspace_id,
                customer_id=customer.id,
                contact_channel="sms",
                purpose="marketing",
                status="granted",
                source="test",
                occurred_at=datetime(2025, 12, 1, tzinfo=UTC),
            )
            for _ in range(rng.choice([1, 2])):
                at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 60 * 86400))
                make_order(session, workspace_id=workspace_id, customer_id=customer.id, placed_at=at)
            bought.append(customer.id)
        lifecycle.sweep(session, actor=actor, now=datetime(2026, 5, 1, tzinfo=UTC))
    with database.transaction() as session:
        for customer_id in bought:
            at = datetime(2026, 4, 1, 4, tzinfo=UTC) + timedelta(days=rng.randrange(0, 60))  # noon, Shanghai
            reach.send(
                session,
                workspace_id=workspace_id,
                source="api",
                source_ref=unique("wake"),
                customer_ids=[customer_id],
                content={"sms": {"text": "好久不见"}},
                purpose="marketing",
                channel_preference=["sms"],
                now=at,
            )
            for claimed in reach.claim(session, limit=10, workspace_id=workspace_id, now=at):
                reach.complete(
                    session,
                    message_id=claimed.message.message_id,
                    lease_token=claimed.lease_token,
                    result=SendResult.sent(unique("p")),
                    now=at,
                )
            if rng.random() < 0.5:
                later = at + timedelta(seconds=rng.randrange(0, 40 * 86400))
                make_order(session, workspace_id=workspace_id, customer_id=customer_id, placed_at=later)


@pytest.fixture(scope="module")
def brand(database: Database, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brand]:
    """The demo generator's brand (small) on this store engine, with dormant customers reached, exported
    to Parquet and opened on Spark."""
    slug = f"spark-{uuid.uuid4().hex[:8]}"
    built = demo.build_demo(
        database, directory=tmp_path_factory.mktemp("brand"), customers=CUSTOMERS, seed=5, slug=slug
    )
    with database.reader() as session:
        actor = auth.command_line_actor(session, workspace_id=built.workspace_id)
    _reach_dormant_customers(database, workspace_id=built.workspace_id, actor=actor, seed=3)
    directory = tmp_path_factory.mktemp("export") / "parquet"
    with database.reader() as session:
        analytics.export_parquet(
            session, workspace_id=built.workspace_id, workspace_slug=slug, directory=directory
        )
    store = analytics.SparkStore(directory)
    yield Brand(database=database, actor=actor, directory=directory, spark_store=store)
    store.dispose()
