"""ix_notification_queue_pending_source: a paged plan reads its next page by index, not by scanning the queue

Revision ID: 0014
Revises: 0013

``pending_page`` and ``pending_count`` filter on the row's source (``context_data ->> 'source_id'``) and
PENDING; a partial index holds only rows still to be sent, so it stays small however large the queue grows.
"""

from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_notification_queue_pending_source ON notification_queue "
        "((context_data ->> 'source_id')) WHERE status = 'PENDING'"
    )


def downgrade() -> None:
    op.drop_index('ix_notification_queue_pending_source', table_name='notification_queue')
