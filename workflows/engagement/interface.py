"""The activity EngagementRetentionWorkflow calls (body in ``activities/engagement``)."""

from __future__ import annotations

from temporalio import activity

from workflows.engagement.types import RetentionCutoff, RetentionResult


@activity.defn
async def purge_engagement(request: RetentionCutoff) -> RetentionResult:
    """Delete engagement events first recorded before the cutoff (in batches)."""
    ...
