"""The importer's set-based lane for records that link nothing against the general identity resolution.

Records with several identity keys that share none with another record of the batch and none known to the
store are created set-based (`identity.resolve_unlinked_groups`); every other record goes through
`identity.resolve_key_groups`. Random customer files with keys drawn from small pools (so that records
link, merge and conflict) are loaded twice — once as the importer does, once with the set-based lane
turned off — and must leave the same people: the same keys together, the same start, channel and
profile, the same merges, reviews and domain events.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.core.db import Database
from siyu.core.domain_events import DomainEvent
from siyu.customers import identity
from siyu.customers.models import Customer, Identity, IdentityReview, MergeLog
from siyu.ingest.loader import load_batch
from siyu.ingest.schemas import ImportKind
from siyu.workspaces import service as workspaces
from tests.ingest.test_loader import batch

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
_slugs = itertools.count()

record = st.fixed_dictionaries(
    {
        "phone": st.one_of(st.none(), st.sampled_from([f"+861396666{n:04d}" for n in range(6)])),
        "email": st.one_of(st.none(), st.sampled_from([f"p{n}@siyu.dev" for n in range(6)])),
        "wechat_unionid": st.one_of(st.none(), st.sampled_from([f"ox-U{n}" for n in range(40)])),
        "shop_member_id": st.one_of(st.none(), st.sampled_from([f"M{n}" for n in range(40)])),
        "name": st.one_of(st.none(), st.sampled_from(["王芳", "李雷", "Ann"])),
        "days": st.integers(0, 30),
    }
)


def _rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**{k: v for k, v in r.items() if k != "days"}, "created_at": T0 + timedelta(days=r["days"])}
        for r in records
    ]


def _people(db: Database, workspace_id: int) -> dict[str, Any]:
    """What resolving left, free of ids: each live customer as its set of keys with its profile."""
    with db.reader() as session:
        keys: dict[int, set[tuple[str, str]]] = {}
        for customer_id, kind, value in session.execute(
            select(Identity.customer_id, Identity.kind, Identity.value).where(
                Identity.workspace_id == workspace_id
            )
        ):
            keys.setdefault(customer_id, set()).add((kind, value))
        customers = session.scalars(select(Customer).where(Customer.workspace_id == workspace_id)).all()
        # a customer with no dated record starts at the import's own time, which differs between runs
        live = {
            frozenset(keys.get(c.id, set())): (
                c.name,
                c.created_at if c.created_at < T0 + timedelta(days=365) else "now",
                c.first_channel_id,
            )
            for c in customers
            if c.merged_into_id is None
        }
        merged = sum(1 for c in customers if c.merged_into_id is not None)
        reviews = len(
            session.scalars(select(IdentityReview).where(IdentityReview.workspace_id == workspace_id)).all()
        )
        merges = len(session.scalars(select(MergeLog).where(MergeLog.workspace_id == workspace_id)).all())
        events = Counter(
            session.scalars(select(DomainEvent.type).where(DomainEvent.workspace_id == workspace_id))
        )
    return {"live": live, "merged": merged, "reviews": reviews, "merges": merges, "events": events}


def _load_all(db: Database, batches: list[list[dict[str, Any]]], chunk_rows: int) -> dict[str, Any]:
    with db.transaction() as session:
        workspace_id = workspaces.create_workspace(
            session, slug=f"paths{next(_slugs)}-{uuid.uuid4().hex[:6]}", name="Paths"
        ).id
    for records in batches:
        with db.transaction() as session:
            load_batch(
                session,
                workspace_id=workspace_id,
                batch=batch(ImportKind.CUSTOMERS, _rows(records)),
                source="test",
                chunk_rows=chunk_rows,
            )
    return _people(db, workspace_id)


def _all_through_key_groups(
    session: Any, *, workspace_id: int, groups: pl.DataFrame, keys: pl.DataFrame, **_: Any
) -> tuple[pl.DataFrame, pl.Series]:
    """The set-based lane turned off: every group is handed back as linked."""
    return pl.DataFrame(schema={"_group": groups.schema["_group"], "customer_id": pl.Int64}), groups["_group"]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=st.lists(st.lists(record, min_size=1, max_size=25), min_size=1, max_size=3),
    chunk_rows=st.sampled_from([3, 7, 50_000]),
)
def test_the_set_based_lane_resolves_like_key_groups(
    db: Database, monkeypatch: pytest.MonkeyPatch, batches: list[list[dict[str, Any]]], chunk_rows: int
) -> None:
    fast = _load_all(db, batches, chunk_rows)
    with monkeypatch.context() as patch:
        patch.setattr(identity, "resolve_unlinked_groups", _all_through_key_groups)
        general = _load_all(db, batches, chunk_rows)
    assert fast == general


def test_the_set_based_lane_takes_records_that_link_nothing(
    db: Database, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records whose keys are all new and unshared never reach the general resolution; a record sharing a
    key with another, or holding a known key, does."""
    seen: list[int] = []
    general = identity.resolve_key_groups

    def counting(session: Any, *, groups: Any, **kw: Any) -> Any:
        seen.append(len(groups))
        return general(session, groups=groups, **kw)

    monkeypatch.setattr(identity, "resolve_key_groups", counting)
    rows = [
        {"phone": "+8613966660001", "email": "a@siyu.dev"},
        {"phone": "+8613966660002", "email": "b@siyu.dev"},
        {"phone": "+8613966660003", "email": "c@siyu.dev"},  # shares c@ with the next record
        {"wechat_unionid": "ox-1", "email": "c@siyu.dev"},
    ]
    with db.transaction() as session:
        load_batch(
            session,
            workspace_id=workspace_id,
            batch=batch(ImportKind.CUSTOMERS, [{**r, "created_at": T0} for r in rows]),
            source="test",
        )
    assert seen == [2]
    with db.transaction() as session:  # a known phone with a new email: linked to its customer
        load_batch(
            session,
            workspace_id=workspace_id,
            batch=batch(
                ImportKind.CUSTOMERS, [{"phone": "+8613966660001", "email": "a2@siyu.dev", "created_at": T0}]
            ),
            source="test",
        )
    assert seen == [2, 1]
    people = _people(db, workspace_id)["live"]
    assert len(people) == 3
    assert (
        frozenset({("phone", "+8613966660001"), ("email", "a@siyu.dev"), ("email", "a2@siyu.dev")}) in people
    )
