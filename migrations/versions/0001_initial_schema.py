"""initial schema

Revision ID: 0001
Revises: 
"""

import uuid

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('escalation_policies',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('due_minutes', sa.Integer(), nullable=False),
    sa.Column('tiers', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('repeat_last', sa.Integer(), server_default='0', nullable=False),
    sa.Column('repeat_every_minutes', sa.Integer(), server_default='240', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_policies')),
    sa.UniqueConstraint('priority', name=op.f('uq_escalation_policies_priority'))
    )
    op.create_table('issue_events',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('issue_id', sa.String(length=64), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issue_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_issue_events_event_id'))
    )
    op.create_index(op.f('ix_issue_events_issue_id_occurred_at'), 'issue_events', ['issue_id', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_issue_events_occurred_at_type'), 'issue_events', ['occurred_at', 'type'], unique=False)
    op.create_table('issues',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reporter_id', sa.String(length=64), nullable=True),
    sa.Column('assignee_id', sa.String(length=64), nullable=True),
    sa.Column('is_auto_reported', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('resolution_notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issues'))
    )
    op.create_index(op.f('ix_issues_created_at'), 'issues', ['created_at'], unique=False)
    op.create_index(op.f('ix_issues_resolved_at'), 'issues', ['resolved_at'], unique=False)
    op.create_index(op.f('ix_issues_status_priority'), 'issues', ['status', 'priority'], unique=False)
    op.create_table('notification_templates',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('display_name', sa.String(length=150), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('template_type', sa.String(length=50), nullable=False),
    sa.Column('notification_type', sa.String(length=50), nullable=False),
    sa.Column('locale', sa.String(length=16), server_default='en', nullable=False),
    sa.Column('subject_template', sa.Text(), nullable=True),
    sa.Column('body_template', sa.Text(), nullable=False),
    sa.Column('html_template', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_templates')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_notification_templates_name_version'))
    )
    op.create_index(op.f('ix_notification_templates_notification_type_template_type_locale'), 'notification_templates', ['notification_type', 'template_type', 'locale'], unique=False)
    op.create_index('uq_notification_templates_active_name', 'notification_templates', ['name'], unique=True, postgresql_where=sa.text('is_active'))
    op.create_table('users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('locale', sa.String(length=16), server_default='en', nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('roles', postgresql.ARRAY(sa.String(length=32)), server_default='{}', nullable=False),
    sa.Column('is_on_call', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('quiet_hours_start', sa.Time(), nullable=True),
    sa.Column('quiet_hours_end', sa.Time(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users'))
    )
    op.create_index(op.f('ix_users_roles'), 'users', ['roles'], unique=False, postgresql_using='gin')
    op.create_table('webhook_subscriptions',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=True),
    sa.Column('notification_types', postgresql.ARRAY(sa.String(length=50)), server_default='{}', nullable=False),
    sa.Column('min_priority', sa.String(length=16), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_subscriptions'))
    )
    op.create_table('notification_preferences',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('notification_type', sa.String(length=50), nullable=False),
    sa.Column('delivery_method', sa.String(length=20), nullable=False),
    sa.Column('is_enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('frequency', sa.String(length=16), server_default='IMMEDIATE', nullable=False),
    sa.Column('digest_hour', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_preferences_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_preferences')),
    sa.UniqueConstraint('user_id', 'notification_type', 'delivery_method', name=op.f('uq_notification_preferences_user_id_notification_type_delivery_method'))
    )
    op.create_table('notification_queue',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('recipient_id', sa.String(length=64), nullable=True),
    sa.Column('template_name', sa.String(length=100), nullable=False),
    sa.Column('delivery_method', sa.String(length=20), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('html_content', sa.Text(), nullable=True),
    sa.Column('context_data', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='PENDING', nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('retry_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_retries', sa.Integer(), server_default='3', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('dedupe_key', sa.String(length=400), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=True),
    sa.Column('notification_type', sa.String(length=50), nullable=False),
    sa.Column('issue_id', sa.String(length=64), nullable=True),
    sa.Column('workflow_id', sa.String(length=200), nullable=True),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('provider_message_id', sa.String(length=300), nullable=True),
    sa.Column('provider_response', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], name=op.f('fk_notification_queue_recipient_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_queue')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notification_queue_dedupe_key'))
    )
    op.create_index(op.f('ix_notification_queue_created_at_id'), 'notification_queue', ['created_at', 'id'], unique=False)
    op.create_index(op.f('ix_notification_queue_event_id'), 'notification_queue', ['event_id'], unique=False)
    op.create_index(op.f('ix_notification_queue_issue_id'), 'notification_queue', ['issue_id'], unique=False)
    op.create_index(op.f('ix_notification_queue_recipient_id_created_at'), 'notification_queue', ['recipient_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_notification_queue_status_created_at'), 'notification_queue', ['status', 'created_at'], unique=False)
    op.create_table('in_app_notifications',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('queue_id', sa.UUID(), nullable=True),
    sa.Column('notification_type', sa.String(length=50), nullable=False),
    sa.Column('issue_id', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['queue_id'], ['notification_queue.id'], name=op.f('fk_in_app_notifications_queue_id_notification_queue'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_in_app_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_in_app_notifications')),
    sa.UniqueConstraint('queue_id', name=op.f('uq_in_app_notifications_queue_id'))
    )
    op.create_index('ix_in_app_notifications_inbox', 'in_app_notifications', ['user_id', sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False, postgresql_where=sa.text('archived_at IS NULL'))
    op.create_index('ix_in_app_notifications_unread', 'in_app_notifications', ['user_id'], unique=False, postgresql_where=sa.text('read_at IS NULL AND archived_at IS NULL'))
    op.create_table('notification_logs',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('queue_id', sa.UUID(), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('notification_type', sa.String(length=50), nullable=False),
    sa.Column('delivery_method', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempt', sa.Integer(), server_default='1', nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_details', sa.Text(), nullable=True),
    sa.Column('context', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['queue_id'], ['notification_queue.id'], name=op.f('fk_notification_logs_queue_id_notification_queue'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_logs_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_logs'))
    )
    op.create_index(op.f('ix_notification_logs_created_at'), 'notification_logs', ['created_at'], unique=False)
    op.create_index(op.f('ix_notification_logs_queue_id_created_at'), 'notification_logs', ['queue_id', 'created_at'], unique=False)

    # Default escalation policies (editable): due time by priority, then
    # all admins 2 h after the due time, on-call admins 4 h after, repeated.
    policies = sa.table(
        "escalation_policies",
        sa.column("id", sa.UUID()),
        sa.column("priority", sa.String()),
        sa.column("due_minutes", sa.Integer()),
        sa.column("tiers", postgresql.JSONB()),
        sa.column("repeat_last", sa.Integer()),
        sa.column("repeat_every_minutes", sa.Integer()),
    )
    tiers = [{"after_minutes": 120, "audience": "admins"}, {"after_minutes": 240, "audience": "on_call"}]
    op.bulk_insert(policies, [
        {"id": uuid.uuid4(), "priority": priority, "due_minutes": minutes, "tiers": tiers,
         "repeat_last": 3, "repeat_every_minutes": 240}
        for priority, minutes in (("CRITICAL", 4 * 60), ("HIGH", 24 * 60), ("MEDIUM", 3 * 24 * 60), ("LOW", 7 * 24 * 60))
    ])


def downgrade() -> None:
    op.drop_index(op.f('ix_notification_logs_queue_id_created_at'), table_name='notification_logs')
    op.drop_index(op.f('ix_notification_logs_created_at'), table_name='notification_logs')
    op.drop_table('notification_logs')
    op.drop_index('ix_in_app_notifications_unread', table_name='in_app_notifications', postgresql_where=sa.text('read_at IS NULL AND archived_at IS NULL'))
    op.drop_index('ix_in_app_notifications_inbox', table_name='in_app_notifications', postgresql_where=sa.text('archived_at IS NULL'))
    op.drop_table('in_app_notifications')
    op.drop_index(op.f('ix_notification_queue_status_created_at'), table_name='notification_queue')
    op.drop_index(op.f('ix_notification_queue_recipient_id_created_at'), table_name='notification_queue')
    op.drop_index(op.f('ix_notification_queue_issue_id'), table_name='notification_queue')
    op.drop_index(op.f('ix_notification_queue_event_id'), table_name='notification_queue')
    op.drop_index(op.f('ix_notification_queue_created_at_id'), table_name='notification_queue')
    op.drop_table('notification_queue')
    op.drop_table('notification_preferences')
    op.drop_table('webhook_subscriptions')
    op.drop_index(op.f('ix_users_roles'), table_name='users', postgresql_using='gin')
    op.drop_table('users')
    op.drop_index('uq_notification_templates_active_name', table_name='notification_templates', postgresql_where=sa.text('is_active'))
    op.drop_index(op.f('ix_notification_templates_notification_type_template_type_locale'), table_name='notification_templates')
    op.drop_table('notification_templates')
    op.drop_index(op.f('ix_issues_status_priority'), table_name='issues')
    op.drop_index(op.f('ix_issues_resolved_at'), table_name='issues')
    op.drop_index(op.f('ix_issues_created_at'), table_name='issues')
    op.drop_table('issues')
    op.drop_index(op.f('ix_issue_events_occurred_at_type'), table_name='issue_events')
    op.drop_index(op.f('ix_issue_events_issue_id_occurred_at'), table_name='issue_events')
    op.drop_table('issue_events')
    op.drop_table('escalation_policies')
