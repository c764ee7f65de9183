"""read_escalations: per notification type, "if not read within N minutes, also send on CHANNEL"

Critical types ship on (unread 10 min → SMS); every other type ships off (ISSUE_ASSIGNED would be
60 min → EMAIL once an admin switches it on).

Revision ID: 0010
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None

TYPES = ['ISSUE_CREATED', 'ISSUE_ASSIGNED', 'ISSUE_STATUS_CHANGED', 'ISSUE_RESOLVED', 'ISSUE_COMMENT_ADDED',
         'ISSUE_REOPENED', 'HIGH_PRIORITY_ISSUE', 'AUTO_ISSUE_DETECTED', 'ISSUE_OVERDUE', 'DAILY_ISSUE_SUMMARY',
         'WEEKLY_ISSUE_REPORT', 'SYSTEM_ERROR_SPIKE']
CRITICAL = {'AUTO_ISSUE_DETECTED', 'SYSTEM_ERROR_SPIKE'}


def upgrade() -> None:
    table = op.create_table(
        'read_escalations',
        sa.Column('notification_type', sa.String(length=50), primary_key=True),
        sa.Column('enabled', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('after_minutes', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_by', sa.String(length=64), nullable=True),
    )
    op.bulk_insert(table, [
        {'notification_type': t, 'enabled': t in CRITICAL,
         'after_minutes': 10 if t in CRITICAL else 60, 'channel': 'SMS' if t in CRITICAL else 'EMAIL'}
        for t in TYPES
    ])


def downgrade() -> None:
    op.drop_table('read_escalations')
