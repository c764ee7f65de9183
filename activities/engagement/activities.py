"""The engagement retention activity: engagement events older than NOTIFLOW_ENGAGEMENT_RETENTION_DAYS go."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.implements import implements
from notiflow.settings import Settings
from workflows.engagement import interface
from workflows.engagement.types import RetentionCutoff, RetentionResult

#: Rows deleted per statement (short transactions; the activity heartbeats between them).
BATCH = 5000

_DELETE = text(
    """
    DELETE FROM engagement_events WHERE id IN (
        SELECT id FROM engagement_events WHERE occurred_at < :cutoff ORDER BY occurred_at LIMIT :batch
    )
    """
)


class EngagementActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self.sessions = sessions
        self.settings = settings

    def activities(self) -> list:
        return [self.purge_engagement]

    @implements(interface.purge_engagement)
    async def purge_engagement(self, request: RetentionCutoff) -> RetentionResult:
        """Events first recorded before now − the retention go, a batch per transaction."""
        days = request.days or self.settings.engagement_retention_days
        cutoff = request.now - timedelta(days=days)
        deleted = 0
        while True:
            async with self.sessions.begin() as session:
                result = await session.execute(_DELETE, {"cutoff": cutoff, "batch": BATCH})
            count = result.rowcount or 0  # type: ignore[attr-defined]
            deleted += count
            if activity.in_activity():
                activity.heartbeat(deleted)
            if count < BATCH:
                return RetentionResult(deleted=deleted, cutoff=cutoff)
