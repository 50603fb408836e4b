"""Acknowledgements: who took a notification in hand, by which channel, and when.

Revision ID: 0010_acknowledgements
Revises: 0009_silences
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_acknowledgements"
down_revision = "0009_silences"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('acknowledgements',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('subscription_id', sa.String(length=36), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key'], ['notifications.key'],
                            name=op.f('fk_acknowledgements_key_notifications'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_acknowledgements'))
    )


def downgrade() -> None:
    op.drop_table('acknowledgements')
