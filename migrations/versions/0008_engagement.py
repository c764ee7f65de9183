"""engagement_events (seen, read, clicked, archived, opened, bounced, complained, unsubscribed: once per queue row
and kind, repeats counted) and tracked_links (the random code of each wrapped link, its stored target)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

KINDS = ("SEEN", "READ", "CLICKED", "ARCHIVED", "OPENED", "BOUNCED", "COMPLAINED", "UNSUBSCRIBED")


def upgrade() -> None:
    op.create_table(
        'engagement_events',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('queue_id', sa.UUID(), nullable=False),
        sa.Column('recipient_id', sa.String(length=64), nullable=True),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('count', sa.Integer(), server_default='1', nullable=False),
        sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")",
                           name=op.f('ck_engagement_events_kind')),
        sa.ForeignKeyConstraint(['queue_id'], ['notification_queue.id'],
                                name=op.f('fk_engagement_events_queue_id_notification_queue'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_engagement_events')),
        sa.UniqueConstraint('queue_id', 'kind', name=op.f('uq_engagement_events_queue_id_kind')),
    )
    op.create_index(op.f('ix_engagement_events_occurred_at'), 'engagement_events', ['occurred_at'], unique=False)
    op.create_index(op.f('ix_engagement_events_kind_channel'), 'engagement_events', ['kind', 'channel'], unique=False)
    op.create_table(
        'tracked_links',
        sa.Column('code', sa.Text(), nullable=False),
        sa.Column('queue_id', sa.UUID(), nullable=False),
        sa.Column('link', sa.String(length=50), nullable=False),
        sa.Column('target', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['queue_id'], ['notification_queue.id'],
                                name=op.f('fk_tracked_links_queue_id_notification_queue'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_tracked_links')),
    )
    op.create_index(op.f('ix_tracked_links_queue_id'), 'tracked_links', ['queue_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_tracked_links_queue_id'), table_name='tracked_links')
    op.drop_table('tracked_links')
    op.drop_index(op.f('ix_engagement_events_kind_channel'), table_name='engagement_events')
    op.drop_index(op.f('ix_engagement_events_occurred_at'), table_name='engagement_events')
    op.drop_table('engagement_events')
