"""Tenant portal sessions: signed in with an API key, ended by sign-out, idleness, age or
the key's revocation.

Revision ID: 0011_portal_sessions
Revises: 0010_acknowledgements
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_portal_sessions"
down_revision = "0010_acknowledgements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("api_key_id", sa.String(length=36), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name=op.f("fk_portal_sessions_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], ondelete="CASCADE",
                                name=op.f("fk_portal_sessions_api_key_id_api_keys")),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_portal_sessions")),
    )
    op.create_index(op.f("ix_portal_sessions_tenant_id"), "portal_sessions", ["tenant_id"])
    op.create_index(op.f("ix_portal_sessions_api_key_id"), "portal_sessions", ["api_key_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_portal_sessions_api_key_id"), table_name="portal_sessions")
    op.drop_index(op.f("ix_portal_sessions_tenant_id"), table_name="portal_sessions")
    op.drop_table("portal_sessions")
