"""inbox_counts: each person's unread in-app count, kept exact by triggers on in_app_notifications

Revision ID: 0013
Revises: 0012

Statement-level triggers with transition tables: one upsert per statement (a delivery batch, a
read-all) whatever its size, its people taken in user_id order so concurrent batches lock their
counters in the same order (no deadlocks). ON CONFLICT DO UPDATE adds to the latest committed
value, so concurrent writers never lose an increment. A counter stays locked until its writer
commits: a transaction that writes several people's rows in several statements (an executemany is
one statement per row) must go in user_id order too, as deliver_in_app does.
"""

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

UNREAD = "read_at IS NULL AND archived_at IS NULL"

# Adds each person's delta (rows of theirs that became unread minus those that stopped being) to the counter.
APPLY = """
    INSERT INTO inbox_counts AS c (user_id, unread)
    SELECT user_id, sum(delta) FROM ({deltas}) AS d GROUP BY user_id HAVING sum(delta) <> 0 ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET unread = c.unread + EXCLUDED.unread;
"""
GAINED = f"SELECT user_id, 1 AS delta FROM new_rows WHERE {UNREAD}"
LOST = f"SELECT user_id, -1 AS delta FROM old_rows WHERE {UNREAD}"

FUNCTIONS = {
    "inbox_counts_inserted": APPLY.format(deltas=GAINED),
    "inbox_counts_updated": APPLY.format(deltas=f"{GAINED} UNION ALL {LOST}"),
    "inbox_counts_deleted": APPLY.format(deltas=LOST),
    "inbox_counts_truncated": "DELETE FROM inbox_counts;",
}
TRIGGERS = {
    "inbox_counts_inserted": "AFTER INSERT ON in_app_notifications REFERENCING NEW TABLE AS new_rows",
    "inbox_counts_updated": "AFTER UPDATE ON in_app_notifications "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "inbox_counts_deleted": "AFTER DELETE ON in_app_notifications REFERENCING OLD TABLE AS old_rows",
    "inbox_counts_truncated": "AFTER TRUNCATE ON in_app_notifications",
}


def upgrade() -> None:
    op.create_table(
        'inbox_counts',
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('unread', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_inbox_counts')),
    )
    # No write to the inbox between the backfill and the triggers' first firing.
    op.execute("LOCK TABLE in_app_notifications IN SHARE ROW EXCLUSIVE MODE")
    for name, body in FUNCTIONS.items():
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}\n"
            "    RETURN NULL;\nEND\n$$"
        )
        op.execute(f"CREATE TRIGGER {name} {TRIGGERS[name]} FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    op.execute(
        "INSERT INTO inbox_counts (user_id, unread) "
        f"SELECT user_id, count(*) FROM in_app_notifications WHERE {UNREAD} GROUP BY user_id"
    )


def downgrade() -> None:
    for name in FUNCTIONS:
        op.execute(f"DROP TRIGGER {name} ON in_app_notifications")
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_table('inbox_counts')
