"""Inbound SMS remembered by Twilio's MessageSid: a signed request replayed (a captured START
sent again after a newer STOP) is recognised and changes nothing.

Revision ID: 0005_sms_inbound
Revises: 0004_opt_outs
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sms_inbound"
down_revision = "0004_opt_outs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_inbound',
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('keyword', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_sms_inbound'))
    )


def downgrade() -> None:
    op.drop_table('sms_inbound')
