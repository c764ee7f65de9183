"""experiments and experiment_arms (A/B variants of a template); notification_queue.variant

Revision ID: 0011
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'experiments',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('notification_type', sa.String(length=50), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('locale', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), server_default='DRAFT', nullable=False),
        sa.Column('goal', sa.String(length=16), nullable=False),
        sa.Column('window_hours', sa.Integer(), nullable=False),
        sa.Column('min_sample_per_arm', sa.Integer(), nullable=False),
        sa.Column('holdout_weight', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('started_by', sa.String(length=64), nullable=True),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stopped_by', sa.String(length=64), nullable=True),
        sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('promoted_by', sa.String(length=64), nullable=True),
        sa.Column('promoted_arm', sa.String(length=40), nullable=True),
        sa.CheckConstraint("state IN ('DRAFT', 'RUNNING', 'STOPPED', 'PROMOTED')", name=op.f('ck_experiments_state')),
        sa.CheckConstraint("goal IN ('READ', 'CLICKED')", name=op.f('ck_experiments_goal')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments')),
    )
    op.create_index('uq_experiments_running_target', 'experiments', ['notification_type', 'channel', 'locale'],
                    unique=True, postgresql_where=sa.text("state = 'RUNNING'"))
    op.create_table(
        'experiment_arms',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('experiment_id', sa.UUID(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('template_id', sa.UUID(), nullable=False),
        sa.Column('weight', sa.Integer(), nullable=False),
        sa.Column('is_control', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'],
                                name=op.f('fk_experiment_arms_experiment_id_experiments'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['template_id'], ['notification_templates.id'],
                                name=op.f('fk_experiment_arms_template_id_notification_templates')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_experiment_arms')),
        sa.UniqueConstraint('experiment_id', 'name', name=op.f('uq_experiment_arms_experiment_id_name')),
    )
    op.add_column('notification_queue', sa.Column('variant', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('notification_queue', 'variant')
    op.drop_table('experiment_arms')
    op.drop_index('uq_experiments_running_target', table_name='experiments', postgresql_where=sa.text("state = 'RUNNING'"))
    op.drop_table('experiments')
