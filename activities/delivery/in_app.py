"""IN_APP delivery: notiflow's own inbox table, so one transaction per batch instead of a provider.

Inbox rows, SENT marks, attempt logs and a ``NOTIFY notiflow_inbox`` per row
(every API process LISTENs and pushes them down the SSE stream) commit together.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from activities.delivery.queries import attempt_log, settle_pending, write_logs
from notiflow.contracts import DeliveryStatus
from notiflow.db import INBOX_CHANNEL
from notiflow.models import InAppNotificationRow, table

_NOTIFY = text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload")


async def deliver_in_app(session: AsyncSession, queue_ids: list[str], attempt: int) -> int:
    """Put the batch's PENDING rows in their recipients' inboxes; returns how many were delivered now."""
    now = datetime.now(timezone.utc)
    rows = await settle_pending(session, queue_ids, status=str(DeliveryStatus.SENT), sent_at=now)
    if not rows:
        return 0
    inbox = [
        {
            "id": uuid.uuid4(),
            "user_id": r.recipient_id,
            "queue_id": r.id,
            "notification_type": r.notification_type,
            "issue_id": r.issue_id,
            "title": (r.subject or "")[:300],
            "body": r.content,
            "link": (r.context_data or {}).get("link"),
        }
        for r in rows
    ]
    # One INSERT per row (executemany), each bumping its person's counter in inbox_counts (migration 0013's
    # triggers), which stays locked until commit: in user_id order, so concurrent batches cannot deadlock.
    inbox.sort(key=lambda i: str(i["user_id"]))
    await session.execute(insert(table(InAppNotificationRow)), inbox)
    await write_logs(session, [attempt_log(r, DeliveryStatus.SENT, attempt, now, None) for r in rows])
    await session.execute(
        _NOTIFY,
        {
            "channel": INBOX_CHANNEL,
            "payloads": [json.dumps({"user_id": i["user_id"], "id": str(i["id"])}) for i in inbox],
        },
    )
    return len(rows)
