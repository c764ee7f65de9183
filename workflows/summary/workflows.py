"""SummaryWorkflow: the daily summary or weekly report, started by the Temporal Schedules of ``programs.schedules``.

The period ends at the time the schedule meant to start the run (the
``TemporalScheduledStartTime`` search attribute), so a backfill or a late
catch-up reports its own day; a run started by hand ends its period now. Admins
get it through the ordinary pipeline, so their preferences apply and a second
run for the same period sends nothing new.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from temporalio import workflow
from temporalio.common import SearchAttributeKey, VersioningBehavior

from notiflow.runs import Audience, NotificationRequest
from workflows.delivery.pipeline import BOOKKEEPING_RETRY, run_pipeline
from workflows.summary.interface import compute_summary
from workflows.summary.types import SummaryInput, SummaryPeriod, SummaryResult

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class SummaryWorkflow:
    @workflow.run
    async def run(self, request: SummaryInput) -> SummaryResult:
        period_end = (workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()).astimezone(
            timezone.utc
        )
        report = await workflow.execute_activity(
            compute_summary,
            SummaryPeriod(report=request.report, period_end=period_end),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=BOOKKEEPING_RETRY,
        )
        workflow.set_current_details(
            f"{request.report} for {report.period_start:%Y-%m-%d %H:%M} – "
            f"{report.period_end:%Y-%m-%d %H:%M} UTC: {report.new_count} new, "
            f"{report.resolved_count} resolved, {len(report.overdue)} overdue"
        )
        outcome = await run_pipeline(
            NotificationRequest(
                source_id=f"summary/{request.report}/{period_end:%Y%m%dT%H%MZ}",
                notification_type=request.report,
                audience=Audience(admins=True),
                data=report.model_dump(mode="json"),
                workflow_id=workflow.info().workflow_id,
                as_of=workflow.now(),
            )
        )
        return SummaryResult(report=report, outcome=outcome)


WORKFLOWS = [SummaryWorkflow]
