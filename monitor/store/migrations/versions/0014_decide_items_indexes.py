"""decide_items: drop the two single-column indexes the composite ones already lead with.

`ix_decide_items_state` is the first column of `ix_decide_items_state_due_at`, and
`ix_decide_items_subscription_id` of `ix_decide_items_subscription_id_state`: every query
that used them uses the composite as well, while every item written (one a subscriber, ten
thousand for a fan-out) paid for both, and every item closed for the first.

Revision ID: 0014_decide_items_indexes
Revises: 0013_escalations
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0014_decide_items_indexes"
down_revision = "0013_escalations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f("ix_decide_items_state"), table_name="decide_items")
    op.drop_index(op.f("ix_decide_items_subscription_id"), table_name="decide_items")


def downgrade() -> None:
    op.create_index(op.f("ix_decide_items_subscription_id"), "decide_items", ["subscription_id"])
    op.create_index(op.f("ix_decide_items_state"), "decide_items", ["state"])
