"""IssueEventWorkflow (id ``event/{event_id}``): one issue event, delivered to everyone who must hear of it.

It also feeds the timers (the issue's SLA, the error-spike detector) with one
activity that runs alongside the deliveries.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from notiflow.contracts import IssueEvent
    from notiflow.plans import DeliveryOutcome, NotificationRequest

from workflows.delivery import BOOKKEEPING_RETRY, run_pipeline


@workflow.defn
class IssueEventWorkflow:
    @workflow.run
    async def run(self, event: IssueEvent) -> DeliveryOutcome:
        request = NotificationRequest(
            source_id=event.event_id, event=event, workflow_id=workflow.info().workflow_id,
            run_id=workflow.info().run_id, as_of=workflow.now(),
        )
        feeding = workflow.start_activity(
            "feed_timers", event, start_to_close_timeout=timedelta(seconds=30), retry_policy=BOOKKEEPING_RETRY,
        )
        outcome = await run_pipeline(request)
        await feeding
        return outcome
