"""Opt-outs by address: a recipient's STOP, one-click unsubscribe or carrier opt-out binds
every subscription to that phone or address, not only the one it arrived on.

Revision ID: 0004_opt_outs
Revises: 0002_decide
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_opt_outs"
down_revision = "0002_decide"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('opt_outs',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=2048), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel', 'target', name=op.f('pk_opt_outs'))
    )


def downgrade() -> None:
    op.drop_table('opt_outs')
