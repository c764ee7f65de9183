"""The activity SummaryWorkflow calls (body in ``activities/summary``)."""

from __future__ import annotations

from temporalio import activity

from workflows.summary.types import SummaryPeriod, SummaryReport


@activity.defn
async def compute_summary(period: SummaryPeriod) -> SummaryReport:
    """Aggregate the period's issues and events in SQL."""
    ...
