"""Silences: a tenant's matchers with a start and an end, an author and a comment.

Revision ID: 0009_silences
Revises: 0008_calendar_feeds
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_silences"
down_revision = "0008_calendar_feeds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('silences',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('match', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('comment', sa.String(length=2000), nullable=False),
    sa.Column('include_all_clear', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_silences_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_silences'))
    )
    op.create_index('ix_silences_tenant_id_ends_at', 'silences', ['tenant_id', 'ends_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_silences_tenant_id_ends_at', table_name='silences')
    op.drop_table('silences')
