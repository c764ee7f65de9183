"""IN_APP delivery: notiflow's own inbox table, so one statement per batch instead of a provider.

Inbox rows, SENT marks, attempt logs and a ``NOTIFY notiflow_inbox`` per row
(every API process LISTENs and pushes them down the SSE stream) commit together.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.db import INBOX_CHANNEL

#: The batch's PENDING rows marked SENT, put in their recipients' inboxes and logged, and each new inbox row
#: announced, in one statement: the inbox's counter trigger (migration 0013) then runs once for the batch, its
#: people in user_id order, where an executemany ran it once per row. Rows already settled are left alone; each
#: row is found (and locked) by its primary key, its status checked there (see ``queries.pending_rows``).
_DELIVER = text("""
    WITH batch AS (
        SELECT p.id
          FROM unnest(CAST(:ids AS uuid[])) AS b(id)
         CROSS JOIN LATERAL (SELECT id FROM notification_queue AS x
                              WHERE x.id = b.id AND x.status = 'PENDING' FOR UPDATE) AS p),
    sent AS (
        UPDATE notification_queue AS q
           SET status = 'SENT', sent_at = :now
          FROM batch
         WHERE q.id = batch.id
     RETURNING q.id, recipient_id, notification_type, delivery_method, issue_id, subject, content, context_data,
               workflow_id),
    inbox AS (
        INSERT INTO in_app_notifications (id, user_id, queue_id, notification_type, issue_id, title, body, link)
        SELECT gen_random_uuid(), recipient_id, id, notification_type, issue_id, left(coalesce(subject, ''), 300),
               content, context_data ->> 'link'
          FROM sent ORDER BY recipient_id
     RETURNING id, user_id),
    logged AS (
        INSERT INTO notification_logs (id, queue_id, user_id, notification_type, delivery_method, status, attempt,
                                       sent_at, context)
        SELECT gen_random_uuid(), id, recipient_id, notification_type, delivery_method, 'SENT', :attempt, :now,
               jsonb_build_object('workflow_id', workflow_id)
          FROM sent)
    SELECT count(pg_notify(:channel, json_build_object('user_id', user_id, 'id', id)::text)) FROM inbox
""").bindparams(bindparam("now", type_=DateTime(timezone=True)))


async def deliver_in_app(session: AsyncSession, queue_ids: list[str], attempt: int) -> int:
    """Put the batch's PENDING rows in their recipients' inboxes; returns how many were delivered now."""
    delivered = await session.execute(
        _DELIVER,
        {"ids": queue_ids, "now": datetime.now(timezone.utc), "attempt": attempt, "channel": INBOX_CHANNEL},
    )
    return delivered.scalar_one()
