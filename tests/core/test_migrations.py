"""Models and migrations must not differ: a model change without a migration fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from siyu.core.db import Database
from siyu.models import Base


def test_models_match_migrations(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; run `make migration m='…'`:\n{diff}"


def test_downgrade_and_upgrade_roundtrip(tmp_path) -> None:
    from siyu.core import migrate

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    db = Database(url)
    with db.engine.connect() as conn:
        tables = set(db.engine.dialect.get_table_names(conn))
    db.dispose()
    assert set(Base.metadata.tables) <= tables


def test_the_consumers_cursors_carry_over_to_the_shared_reader_and_back(tmp_path) -> None:
    """0024: a cursor by id at N goes on before the first event after N in commit order (nothing after
    N is skipped, even when an event after N belongs to an older transaction), and comes back as an id
    cursor below the first event it has not handled."""
    from sqlalchemy import text

    from siyu.core import migrate
    from siyu.workspaces import service as workspaces

    url = f"sqlite:///{tmp_path / 'carry.db'}"
    migrate.upgrade(url, "0023")
    db = Database(url)
    with db.transaction() as session:
        commit_order = workspaces.create_workspace(session, slug="carry-pg", name="PG-like").id
        id_order = workspaces.create_workspace(session, slug="carry-lite", name="SQLite").id
    # (id, tx_id): commit order is 1, 3, 2, 4 by transaction, and event 5 belongs to an older transaction
    events = [(commit_order, 1, 10), (commit_order, 2, 12), (commit_order, 3, 11), (commit_order, 4, 13)]
    events += [(commit_order, 5, 9)] + [(id_order, i, 0) for i in range(6, 10)]
    cursors = {
        "membership_event_cursor": [(commit_order, 3), (id_order, 7)],
        "coupon_event_cursor": [(commit_order, 5), (id_order, 9)],
        "referral_event_cursor": [(commit_order, 1)],
    }
    with db.engine.begin() as conn:
        for ws, event_id, tx_id in events:
            conn.execute(
                text(
                    "INSERT INTO domain_event (id, tx_id, workspace_id, type, payload, occurred_at, created_at)"
                    " VALUES (:id, :tx, :ws, 'order.placed', '{}', '2026-01-01', '2026-01-01')"
                ),
                {"id": event_id, "tx": tx_id, "ws": ws},
            )
        for table, rows in cursors.items():
            for ws, last in rows:
                conn.execute(
                    text(f"INSERT INTO {table} VALUES (:ws, :last, '2026-01-01')"), {"ws": ws, "last": last}
                )
    db.dispose()

    migrate.upgrade(url)
    db = Database(url)
    with db.engine.connect() as conn:
        carried = {
            (consumer, ws): (tx, event)
            for consumer, ws, tx, event in conn.execute(
                text("SELECT consumer, workspace_id, last_tx_id, last_event_id FROM domain_event_cursor")
            )
        }
    db.dispose()
    assert carried == {
        # handled 1..3; 4 and 5 are unread, and 5's transaction (9) comes first: every event is read again
        ("membership", commit_order): (9, 4),
        ("membership", id_order): (0, 7),  # exact where ids commit in order
        ("coupons", commit_order): (13, 4),  # handled everything: the last in commit order
        ("coupons", id_order): (0, 9),
        ("referrals", commit_order): (9, 4),
    }

    migrate.downgrade(url, "0023")
    db = Database(url)
    with db.engine.connect() as conn:
        back = {
            (table, ws): last
            for table in cursors
            for ws, last in conn.execute(text(f"SELECT workspace_id, last_event_id FROM {table}"))
        }
        left = conn.execute(text("SELECT count(*) FROM domain_event_cursor")).scalar()
    db.dispose()
    assert left == 0
    assert back == {
        ("membership_event_cursor", commit_order): 0,  # (9, 4) has handled no id for certain
        ("membership_event_cursor", id_order): 7,
        ("coupon_event_cursor", commit_order): 5,
        ("coupon_event_cursor", id_order): 9,
        ("referral_event_cursor", commit_order): 0,
    }
