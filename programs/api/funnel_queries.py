"""SQL of the engagement funnel: notification_queue ⨝ engagement_events in one statement, grouped in the database
per (UTC day, type, channel) and per (type, channel) over the whole period (GROUPING SETS), so the period's
median is a real median, not one of daily medians."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import DateTime, String

#: Rows created in [from, to). ``sent`` = rows that went out or failed trying (SENT or FAILED; pending, held and
#: cancelled rows are not in the funnel yet), ``delivered`` = SENT, then rows with each engagement kind (one event
#: per row and kind, the first time in ``occurred_at``). Machine opens (``detail.machine`` without a later human
#: open, ``detail.human_at``) are left out of the join, so they count for nothing. The median is over delivered
#: rows with a READ: seconds from ``sent_at`` to the first READ.
FUNNEL = text(
    """
    SELECT (q.created_at AT TIME ZONE 'UTC')::date AS day,
           GROUPING((q.created_at AT TIME ZONE 'UTC')::date) = 1 AS whole_period,
           q.notification_type,
           q.delivery_method AS channel,
           count(DISTINCT q.id) FILTER (WHERE q.status IN ('SENT', 'FAILED')) AS sent,
           count(DISTINCT q.id) FILTER (WHERE q.status = 'SENT') AS delivered,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'SEEN') AS seen,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'OPENED') AS opened,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'READ') AS read,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'CLICKED') AS clicked,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'BOUNCED') AS bounced,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'COMPLAINED') AS complained,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.occurred_at - q.sent_at))
               FILTER (WHERE e.kind = 'READ' AND q.status = 'SENT' AND q.sent_at IS NOT NULL)
               AS median_seconds_to_read
      FROM notification_queue q
      LEFT JOIN engagement_events e
        ON e.queue_id = q.id
       AND e.kind IN ('SEEN', 'OPENED', 'READ', 'CLICKED', 'BOUNCED', 'COMPLAINED')
       AND NOT (coalesce(e.detail ->> 'machine', 'false') = 'true' AND e.detail ->> 'human_at' IS NULL)
     WHERE q.created_at >= :created_from AND q.created_at < :created_to
       AND (CAST(:notification_type AS text) IS NULL OR q.notification_type = :notification_type)
       AND (CAST(:channel AS text) IS NULL OR q.delivery_method = :channel)
     GROUP BY GROUPING SETS (
         ((q.created_at AT TIME ZONE 'UTC')::date, q.notification_type, q.delivery_method),
         (q.notification_type, q.delivery_method)
     )
     ORDER BY whole_period, day, q.notification_type, q.delivery_method
    """
).bindparams(
    bindparam("created_from", type_=DateTime(timezone=True)),
    bindparam("created_to", type_=DateTime(timezone=True)),
    bindparam("notification_type", type_=String),
    bindparam("channel", type_=String),
)


@dataclass(frozen=True)
class FunnelCounts:
    day: date | None  # None: the whole period
    notification_type: str
    channel: str
    sent: int
    delivered: int
    seen: int
    opened: int
    read: int
    clicked: int
    bounced: int
    complained: int
    median_seconds_to_read: float | None


async def funnel_counts(
    session: AsyncSession,
    created_from: datetime,
    created_to: datetime,
    notification_type: str | None = None,
    channel: str | None = None,
) -> list[FunnelCounts]:
    rows = await session.execute(
        FUNNEL,
        {
            "created_from": created_from,
            "created_to": created_to,
            "notification_type": notification_type,
            "channel": channel,
        },
    )
    return [
        FunnelCounts(
            day=None if r["whole_period"] else r["day"],
            **{k: v for k, v in r.items() if k not in ("day", "whole_period")},
        )
        for r in rows.mappings()
    ]
