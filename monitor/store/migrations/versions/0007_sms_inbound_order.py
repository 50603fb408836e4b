"""Inbound SMS ordered by when Twilio received them: `sms_inbound.received_at` is Twilio's
`date_created` of the message, and the last STOP of a number is found by phone and time, so a
START Twilio received before it (delivered late, or replayed) does not undo it.

Revision ID: 0007_sms_inbound_order
Revises: 0006_senders
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0007_sms_inbound_order"
down_revision = "0006_senders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sms_inbound_phone_received_at", "sms_inbound",
                    ["phone", "received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sms_inbound_phone_received_at", table_name="sms_inbound")
