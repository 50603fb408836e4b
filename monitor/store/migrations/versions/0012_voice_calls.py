"""Voice calls: Twilio call SIDs per notification attempt, their status and who answered.

Revision ID: 0012_voice_calls
Revises: 0011_portal_sessions
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_voice_calls"
down_revision = "0011_portal_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('voice_calls',
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('notification_key', sa.String(length=64), nullable=False),
    sa.Column('attempt_no', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('answered_by', sa.String(length=32), nullable=True),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notification_key'], ['notifications.key'],
                            name=op.f('fk_voice_calls_notification_key_notifications'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_voice_calls'))
    )
    op.create_index(op.f('ix_voice_calls_notification_key'), 'voice_calls',
                    ['notification_key'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_voice_calls_notification_key'), table_name='voice_calls')
    op.drop_table('voice_calls')
