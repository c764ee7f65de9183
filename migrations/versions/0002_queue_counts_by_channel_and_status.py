"""queue counts by channel and status

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_notification_queue_delivery_method_status'), 'notification_queue', ['delivery_method', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_notification_queue_delivery_method_status'), table_name='notification_queue')
