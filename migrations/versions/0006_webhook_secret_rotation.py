"""webhook_subscriptions: secret rotation (previous secret and its expiry), updated_at, why it was deactivated

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('webhook_subscriptions', sa.Column('previous_secret', sa.String(length=200), nullable=True))
    op.add_column('webhook_subscriptions',
                  sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('webhook_subscriptions', sa.Column('updated_at', sa.DateTime(timezone=True),
                                                     server_default=sa.text('now()'), nullable=False))
    op.add_column('webhook_subscriptions', sa.Column('deactivated_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('webhook_subscriptions', 'deactivated_reason')
    op.drop_column('webhook_subscriptions', 'updated_at')
    op.drop_column('webhook_subscriptions', 'previous_secret_expires_at')
    op.drop_column('webhook_subscriptions', 'previous_secret')
