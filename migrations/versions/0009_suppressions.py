"""suppressions (addresses not to send to) and bounce_reports (every DSN / ARF report received)

Revision ID: 0009
Revises: 0010 (main's head when main was merged into `bounces`; the merger re-chains it with engagement's 0008)
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision = '0009'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'suppressions',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('address', sa.String(length=500), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('scope', sa.String(length=16), server_default='ALL', nullable=False),
        sa.Column('status_code', sa.String(length=32), nullable=True),
        sa.Column('status_text', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('queue_id', sa.UUID(), nullable=True),
        sa.Column('created_by', sa.String(length=200), nullable=True),
        sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('removed_by', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['queue_id'], ['notification_queue.id'],
                                name=op.f('fk_suppressions_queue_id_notification_queue'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    )
    op.create_index('uq_suppressions_active_address', 'suppressions', ['channel', 'address'], unique=True,
                    postgresql_where=sa.text('active'))
    op.create_index(op.f('ix_suppressions_created_at_id'), 'suppressions', ['created_at', 'id'], unique=False)
    op.create_index(op.f('ix_suppressions_address'), 'suppressions', ['address'], unique=False)

    op.create_table(
        'bounce_reports',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('envelope_from', sa.String(length=500), nullable=True),
        sa.Column('envelope_to', sa.String(length=500), nullable=True),
        sa.Column('raw_size', sa.Integer(), nullable=False),
        sa.Column('raw', sa.LargeBinary(), nullable=False),
        sa.Column('verp_code', sa.String(length=64), nullable=True),
        sa.Column('message_id', sa.String(length=500), nullable=True),
        sa.Column('queue_id', sa.UUID(), nullable=True),
        sa.Column('channel', sa.String(length=20), server_default='EMAIL', nullable=False),
        sa.Column('address', sa.String(length=500), nullable=True),
        sa.Column('action', sa.String(length=32), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=True),
        sa.Column('diagnostic', sa.Text(), nullable=True),
        sa.Column('bounce_type', sa.String(length=16), nullable=False),
        sa.Column('unmatched_reason', sa.Text(), nullable=True),
        sa.Column('suppression_id', sa.UUID(), nullable=True),
        sa.Column('engagement', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(['queue_id'], ['notification_queue.id'],
                                name=op.f('fk_bounce_reports_queue_id_notification_queue'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['suppression_id'], ['suppressions.id'],
                                name=op.f('fk_bounce_reports_suppression_id_suppressions'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bounce_reports')),
    )
    op.create_index(op.f('ix_bounce_reports_received_at'), 'bounce_reports', ['received_at'], unique=False)
    op.create_index(op.f('ix_bounce_reports_queue_id'), 'bounce_reports', ['queue_id'], unique=False)
    op.create_index(op.f('ix_bounce_reports_address_bounce_type_received_at'), 'bounce_reports',
                    ['address', 'bounce_type', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_table('bounce_reports')
    op.drop_table('suppressions')
