"""tags: tag groups, tags and customer tags

Tag groups and tags (unique names per workspace and per group) and customer_tag, one row per customer
and tag with its source (manual, rule, import, live_code, journey), who and when.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 19:02:08.578094
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.core.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tag_group",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", siyu.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_tag_group_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_group")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_tag_group_workspace_id_name")),
    )
    with op.batch_alter_table("tag_group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tag_group_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "tag",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", siyu.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["tag_group.id"], name=op.f("fk_tag_group_id_tag_group"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_tag_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag")),
        sa.UniqueConstraint(
            "workspace_id", "group_id", "name", name=op.f("uq_tag_workspace_id_group_id_name")
        ),
    )
    with op.batch_alter_table("tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tag_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tag_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "customer_tag",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=100), nullable=True),
        sa.Column("actor_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("tagged_at", siyu.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_customer_tag_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_customer_tag_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_customer_tag_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "tag_id", name=op.f("pk_customer_tag")),
    )
    with op.batch_alter_table("customer_tag", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_tag_ws_tag", ["workspace_id", "tag_id", "customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_tag", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_tag_ws_tag")

    op.drop_table("customer_tag")
    with op.batch_alter_table("tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tag_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_tag_group_id"))

    op.drop_table("tag")
    with op.batch_alter_table("tag_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tag_group_workspace_id"))

    op.drop_table("tag_group")
