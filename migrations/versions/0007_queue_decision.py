"""notification_queue.decision: the decision taken for each row, stored when it is taken (issue 16 item 4)

JSONB: {"outcome": SEND | SKIPPED | HELD | RATE_CAPPED | DIGESTED | FELL_BACK | FAILED | REQUEUED, "reason",
"at", "held_until", "frequency", ...}; see activities/delivery/rows.py. Rows stored before this revision
have none (NULL): readers say so instead of re-deriving it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('notification_queue',
                  sa.Column('decision', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('notification_queue', 'decision')
