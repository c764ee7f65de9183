"""What a bounce or a complaint means for the mail's engagement (``BOUNCED`` / ``COMPLAINED``).

One small interface, ``record_engagement``, so the bounce receiver does not depend on how engagement is
stored: it records the event in ``engagement_events`` (``notiflow/engagement.py : record_engagement``, once
per queue row and kind, a repeat counted) and notes it on the report's own row (``bounce_reports.engagement``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow import engagement
from notiflow.models import BounceReportRow

BOUNCED, COMPLAINED = str(engagement.EngagementKind.BOUNCED), str(engagement.EngagementKind.COMPLAINED)


async def record_engagement(
    session: AsyncSession,
    *,
    report_id: uuid.UUID,
    queue_id: uuid.UUID,
    kind: str,
    occurred_at: datetime,
    detail: dict[str, Any],
) -> None:
    """Record that the mail of ``queue_id`` was ``kind`` (in the caller's transaction)."""
    count = await engagement.record_engagement(
        session, queue_id, kind, detail=detail | {"report_id": str(report_id)}, at=occurred_at
    )
    await session.execute(
        update(BounceReportRow)
        .where(BounceReportRow.id == report_id)
        .values(
            engagement={
                "kind": kind,
                "queue_id": str(queue_id),
                "occurred_at": occurred_at.isoformat(),
                "detail": detail,
                "count": count,
            }
        )
    )
