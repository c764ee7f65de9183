"""EngagementRetentionWorkflow: applies NOTIFLOW_ENGAGEMENT_RETENTION_DAYS, started daily by the Temporal
Schedule ``engagement-retention`` (``programs.schedules``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from workflows.delivery.pipeline import BOOKKEEPING_RETRY
from workflows.engagement.interface import purge_engagement
from workflows.engagement.types import RetentionCutoff, RetentionInput, RetentionResult


@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class EngagementRetentionWorkflow:
    @workflow.run
    async def run(self, request: RetentionInput) -> RetentionResult:
        result = await workflow.execute_activity(
            purge_engagement,
            RetentionCutoff(now=workflow.now(), days=request.days),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=BOOKKEEPING_RETRY,
        )
        workflow.set_current_details(
            f"deleted {result.deleted} engagement events before {result.cutoff:%Y-%m-%d %H:%M} UTC"
        )
        return result


WORKFLOWS = [EngagementRetentionWorkflow]
