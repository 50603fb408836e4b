"""Escalation policies, their runs and each run's pages.

Revision ID: 0013_escalations
Revises: 0012_voice_calls
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_escalations"
down_revision = "0012_voice_calls"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalation_policies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("min_severity", sa.String(length=16), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_escalation_policies_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_policies")))
    op.create_index(op.f("ix_escalation_policies_tenant_id"), "escalation_policies",
                    ["tenant_id"], unique=False)
    op.create_table(
        "escalations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("policy_id", sa.String(length=36), nullable=False),
        sa.Column("condition_id", sa.String(length=200), nullable=False),
        sa.Column("transition", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("next_at", TS, nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.Column("acknowledged_key", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_escalations_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")))
    op.create_index(op.f("ix_escalations_condition_id"), "escalations", ["condition_id"],
                    unique=False)
    op.create_index("ix_escalations_state_next_at", "escalations", ["state", "next_at"],
                    unique=False)
    op.create_table(
        "escalation_pages",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=True),
        sa.Column("paged_at", TS, nullable=True),
        sa.Column("muted", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["escalations.id"],
                                name=op.f("fk_escalation_pages_run_id_escalations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "subscription_id", name=op.f("pk_escalation_pages")))
    op.create_index(op.f("ix_escalation_pages_subscription_id"), "escalation_pages",
                    ["subscription_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_escalation_pages_subscription_id"), table_name="escalation_pages")
    op.drop_table("escalation_pages")
    op.drop_index("ix_escalations_state_next_at", table_name="escalations")
    op.drop_index(op.f("ix_escalations_condition_id"), table_name="escalations")
    op.drop_table("escalations")
    op.drop_index(op.f("ix_escalation_policies_tenant_id"), table_name="escalation_policies")
    op.drop_table("escalation_policies")
