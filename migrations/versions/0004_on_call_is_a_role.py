"""on call is a role: the on_call role and the is_on_call flag agree on every existing row

Revision ID: 0004
Revises: 0003
"""

from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE users SET is_on_call = true WHERE 'on_call' = ANY(roles) AND NOT is_on_call")
    op.execute("UPDATE users SET roles = array_append(roles, 'on_call') WHERE is_on_call AND NOT 'on_call' = ANY(roles)")


def downgrade() -> None:
    pass  # the data stays consistent either way
