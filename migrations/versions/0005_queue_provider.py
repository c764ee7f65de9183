"""notification_queue.provider: which system took a delivery (primary or fallback SMTP relay, SMS gateway)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('notification_queue', sa.Column('provider', sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column('notification_queue', 'provider')
