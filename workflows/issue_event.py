"""IssueEventWorkflow (id ``event/{event_id}``): one issue event, delivered to everyone who must hear of it."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from notiflow.contracts import IssueEvent
    from notiflow.plans import DeliveryOutcome, NotificationRequest

from workflows.delivery import run_pipeline


@workflow.defn
class IssueEventWorkflow:
    @workflow.run
    async def run(self, event: IssueEvent) -> DeliveryOutcome:
        request = NotificationRequest(
            source_id=event.event_id, event=event, workflow_id=workflow.info().workflow_id, as_of=workflow.now()
        )
        return await run_pipeline(request)
