"""Decide's state: condition views, threshold arming, the item dedup/grouping log.

Revision ID: 0002_decide
Revises: 0003_deliver
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_decide"
down_revision = "0003_deliver"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "decide_views",
        sa.Column("condition_id", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("condition_id", name=op.f("pk_decide_views")),
    )
    op.create_index(op.f("ix_decide_views_status"), "decide_views", ["status"])
    op.create_table(
        "decide_thresholds",
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("threshold", sa.String(64), nullable=False),
        sa.Column("condition_id", sa.String(300), nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", "threshold", "condition_id",
                                name=op.f("pk_decide_thresholds")),
    )
    op.create_table(
        "decide_items",
        sa.Column("item_key", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("batch_key", sa.String(64), nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("flushed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("item_key", name=op.f("pk_decide_items")),
    )
    op.create_index(op.f("ix_decide_items_subscription_id"), "decide_items", ["subscription_id"])
    op.create_index(op.f("ix_decide_items_state"), "decide_items", ["state"])
    op.create_index(op.f("ix_decide_items_batch_key"), "decide_items", ["batch_key"])
    op.create_index("ix_decide_items_state_due_at", "decide_items", ["state", "due_at"])
    op.create_index("ix_decide_items_subscription_id_state", "decide_items",
                    ["subscription_id", "state", "flushed_at"])


def downgrade() -> None:
    op.drop_index("ix_decide_items_subscription_id_state", table_name="decide_items")
    op.drop_index("ix_decide_items_state_due_at", table_name="decide_items")
    op.drop_index(op.f("ix_decide_items_batch_key"), table_name="decide_items")
    op.drop_index(op.f("ix_decide_items_state"), table_name="decide_items")
    op.drop_index(op.f("ix_decide_items_subscription_id"), table_name="decide_items")
    op.drop_table("decide_items")
    op.drop_table("decide_thresholds")
    op.drop_index(op.f("ix_decide_views_status"), table_name="decide_views")
    op.drop_table("decide_views")
