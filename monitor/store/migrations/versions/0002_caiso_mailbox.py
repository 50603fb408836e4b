"""CAISO notice mailbox: every message processed, by Message-ID, with its UID and notice text.

Revision ID: 0002_caiso_mailbox
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_caiso_mailbox"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('caiso_mailbox_messages',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=500), nullable=False),
    sa.Column('mailbox', sa.String(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('notice_text', sa.Text(), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_caiso_mailbox_messages')),
    sa.UniqueConstraint('message_id', name=op.f('uq_caiso_mailbox_messages_message_id'))
    )
    op.create_index(op.f('ix_caiso_mailbox_messages_mailbox'), 'caiso_mailbox_messages', ['mailbox', 'uidvalidity', 'uid'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_caiso_mailbox_messages_mailbox'), table_name='caiso_mailbox_messages')
    op.drop_table('caiso_mailbox_messages')
