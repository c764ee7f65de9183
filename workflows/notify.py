"""NotifyWorkflow: an explicit notification (type, audience, data) through the same delivery path.

Used by send-test, and by any caller that wants to tell named people something.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from notiflow.plans import DeliveryOutcome, NotificationRequest

from workflows.delivery import run_pipeline


@workflow.defn
class NotifyWorkflow:
    @workflow.run
    async def run(self, request: NotificationRequest) -> DeliveryOutcome:
        request = request.model_copy(update={"workflow_id": workflow.info().workflow_id, "run_id": workflow.info().run_id,
                                            "as_of": workflow.now()})
        return await run_pipeline(request)
