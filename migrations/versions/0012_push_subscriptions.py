"""push_subscriptions: the browsers (Web Push) and phones (FCM, APNs) a person is reached on by PUSH

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'push_subscriptions',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), server_default='WEB', nullable=False),
        sa.Column('endpoint', sa.String(length=2000), nullable=False),
        sa.Column('p256dh', sa.String(length=200), nullable=True),
        sa.Column('auth', sa.String(length=100), nullable=True),
        sa.Column('user_agent', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('WEB', 'FCM', 'APNS')", name=op.f('ck_push_subscriptions_kind')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_push_subscriptions_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_push_subscriptions')),
        sa.UniqueConstraint('user_id', 'endpoint', name=op.f('uq_push_subscriptions_user_id_endpoint')),
    )
    op.create_index(op.f('ix_push_subscriptions_user_id_created_at'), 'push_subscriptions',
                    ['user_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_push_subscriptions_user_id_created_at'), table_name='push_subscriptions')
    op.drop_table('push_subscriptions')
