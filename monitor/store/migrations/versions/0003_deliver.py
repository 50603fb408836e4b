"""Deliver: endpoint health (auto-disable after days of failure) and Twilio message tracking.

Revision ID: 0003_deliver
Revises: 0002_caiso_mailbox
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_deliver"
down_revision = "0002_caiso_mailbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notifications') as batch:
        batch.add_column(sa.Column('attempt_base', sa.Integer(), server_default='0',
                                   nullable=False))
    op.create_table('endpoint_health',
    sa.Column('subscription_id', sa.String(length=36), nullable=False),
    sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('subscription_id', name=op.f('pk_endpoint_health'))
    )
    op.create_table('sms_messages',
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('notification_key', sa.String(length=64), nullable=False),
    sa.Column('attempt_no', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notification_key'], ['notifications.key'], name=op.f('fk_sms_messages_notification_key_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_sms_messages'))
    )
    op.create_index(op.f('ix_sms_messages_notification_key'), 'sms_messages', ['notification_key'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sms_messages_notification_key'), table_name='sms_messages')
    op.drop_table('sms_messages')
    op.drop_table('endpoint_health')
    with op.batch_alter_table('notifications') as batch:
        batch.drop_column('attempt_base')
