"""points, coupon refunds and referrals read the outbox through the shared reader (commit order)

Their own cursors (`membership_event_cursor`, `coupon_event_cursor`, `referral_event_cursor`, by event id)
become rows of `domain_event_cursor` (consumers "membership", "coupons", "referrals"). A cursor at id N
had handled every event up to N; it goes on just before the first event after N in commit order, so no
event is skipped (on PostgreSQL an event at or below N that committed after that one is read again: every
effect of these consumers is keyed, so a second reading changes nothing; on SQLite the position is exact).
The downgrade carries positions back the same way.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 05:39:04.627229
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import siyu.core.db

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the old table of each consumer
CURSORS = {
    "membership": "membership_event_cursor",
    "coupons": "coupon_event_cursor",
    "referrals": "referral_event_cursor",
}


def _first_after_id(conn: sa.Connection, workspace_id: int, event_id: int) -> tuple[int, int] | None:
    """The first event in commit order among the workspace's events with an id above `event_id`."""
    row = conn.execute(
        sa.text(
            "SELECT tx_id, id FROM domain_event WHERE workspace_id = :ws AND id > :id"
            " ORDER BY tx_id, id LIMIT 1"
        ),
        {"ws": workspace_id, "id": event_id},
    ).first()
    return (int(row[0]), int(row[1])) if row else None


def _position_of_id(conn: sa.Connection, workspace_id: int, event_id: int) -> tuple[int, int]:
    """The commit-order position of a cursor that handled every event up to id `event_id`."""
    first = _first_after_id(conn, workspace_id, event_id)
    if first is not None:
        return first[0], first[1] - 1  # everything before the first unread event, and nothing from it on
    last = conn.execute(
        sa.text(
            "SELECT tx_id, id FROM domain_event WHERE workspace_id = :ws AND id <= :id"
            " ORDER BY tx_id DESC, id DESC LIMIT 1"
        ),
        {"ws": workspace_id, "id": event_id},
    ).first()
    return (int(last[0]), int(last[1])) if last else (0, 0)


def _id_of_position(conn: sa.Connection, workspace_id: int, tx_id: int, event_id: int) -> int:
    """The id cursor of a consumer that handled every event up to (tx_id, event_id) in commit order:
    just below the lowest id it has not handled."""
    row = conn.execute(
        sa.text("SELECT min(id) FROM domain_event WHERE workspace_id = :ws AND (tx_id, id) > (:tx, :id)"),
        {"ws": workspace_id, "tx": tx_id, "id": event_id},
    ).first()
    if row is not None and row[0] is not None:
        return int(row[0]) - 1
    found = conn.execute(
        sa.text("SELECT max(id) FROM domain_event WHERE workspace_id = :ws"), {"ws": workspace_id}
    ).first()
    return int(found[0]) if found is not None and found[0] is not None else event_id


def upgrade() -> None:
    conn = op.get_bind()
    cursors = sa.table(
        "domain_event_cursor",
        sa.column("consumer", sa.String),
        sa.column("workspace_id", sa.BigInteger),
        sa.column("last_event_id", sa.BigInteger),
        sa.column("last_tx_id", sa.BigInteger),
        sa.column("updated_at", siyu.core.db.UTCDateTime(timezone=True)),
    )
    for consumer, table in CURSORS.items():
        old = conn.execute(sa.text(f"SELECT workspace_id, last_event_id FROM {table}")).all()
        now = datetime.now(UTC)
        for workspace_id, last_event_id in old:
            tx_id, event_id = _position_of_id(conn, int(workspace_id), int(last_event_id or 0))
            conn.execute(
                sa.insert(cursors).values(
                    consumer=consumer,
                    workspace_id=int(workspace_id),
                    last_event_id=event_id,
                    last_tx_id=tx_id,
                    updated_at=now,
                )
            )
        op.drop_table(table)


def downgrade() -> None:
    conn = op.get_bind()
    for consumer, table in CURSORS.items():
        op.create_table(
            table,
            sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("last_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("updated_at", siyu.core.db.UTCDateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["workspace_id"],
                ["workspace.id"],
                name=op.f(f"fk_{table}_workspace_id_workspace"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("workspace_id", name=op.f(f"pk_{table}")),
        )
        old = sa.table(
            table,
            sa.column("workspace_id", sa.BigInteger),
            sa.column("last_event_id", sa.BigInteger),
            sa.column("updated_at", siyu.core.db.UTCDateTime(timezone=True)),
        )
        rows = conn.execute(
            sa.text(
                "SELECT c.workspace_id, c.last_tx_id, c.last_event_id FROM domain_event_cursor c"
                " JOIN workspace w ON w.id = c.workspace_id WHERE c.consumer = :consumer"
            ),
            {"consumer": consumer},
        ).all()
        now = datetime.now(UTC)
        for workspace_id, tx_id, event_id in rows:
            conn.execute(
                sa.insert(old).values(
                    workspace_id=int(workspace_id),
                    last_event_id=_id_of_position(conn, int(workspace_id), int(tx_id or 0), int(event_id)),
                    updated_at=now,
                )
            )
        conn.execute(
            sa.text("DELETE FROM domain_event_cursor WHERE consumer = :consumer"), {"consumer": consumer}
        )
