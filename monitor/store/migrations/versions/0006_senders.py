"""Claims that name their sender, and senders' heartbeats: a deliver process that dies has
its claims taken over within seconds instead of after the lease.

Revision ID: 0006_senders
Revises: 0005_sms_inbound
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_senders"
down_revision = "0005_sms_inbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('senders',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_senders'))
    )
    with op.batch_alter_table('notifications') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notifications') as batch:
        batch.drop_column('claimed_by')
    op.drop_table('senders')
