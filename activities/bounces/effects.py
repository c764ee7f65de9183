"""What a bounce or a complaint means for the mail's engagement (``BOUNCED`` / ``COMPLAINED``).

One small interface, ``record_engagement``, so the bounce receiver does not depend on how engagement is
stored. Here it writes the engagement on the report's own row (``bounce_reports.engagement``); where the
``engagement_events`` table exists, this is the one function to point at it (once per queue row and kind).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.models import BounceReportRow

BOUNCED, COMPLAINED = "BOUNCED", "COMPLAINED"


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
    await session.execute(
        update(BounceReportRow)
        .where(BounceReportRow.id == report_id)
        .values(
            engagement={
                "kind": kind,
                "queue_id": str(queue_id),
                "occurred_at": occurred_at.isoformat(),
                "detail": detail,
            }
        )
    )
