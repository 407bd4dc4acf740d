"""bulk-loaded tables without foreign keys

customer_order, order_line and domain_event take a row per order on every import; their foreign keys
cost a key check per row and key (see docs/architecture.md, "Store"). order_line loses its unused
workspace index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:10:12.400530
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_customer_order_customer_id_customer"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_customer_order_workspace_id_workspace"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_customer_order_channel_id_channel"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_customer_order_store_id_store"), type_="foreignkey")

    with op.batch_alter_table("domain_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_domain_event_workspace_id_workspace"), type_="foreignkey")

    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_line_workspace_id"))
        batch_op.drop_constraint(batch_op.f("fk_order_line_order_id_customer_order"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_order_line_workspace_id_workspace"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_order_line_workspace_id_workspace"),
            "workspace",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_order_line_order_id_customer_order"),
            "customer_order",
            ["order_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(batch_op.f("ix_order_line_workspace_id"), ["workspace_id"], unique=False)

    with op.batch_alter_table("domain_event", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_domain_event_workspace_id_workspace"),
            "workspace",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )

    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_customer_order_store_id_store"), "store", ["store_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_customer_order_channel_id_channel"),
            "channel",
            ["channel_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_customer_order_workspace_id_workspace"),
            "workspace",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_customer_order_customer_id_customer"),
            "customer",
            ["customer_id"],
            ["id"],
            ondelete="SET NULL",
        )
