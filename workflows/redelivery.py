"""RedeliveryWorkflow (id ``redeliver/{request_id}``): send an operator's choice of FAILED rows again.

One run per request id, so asking twice (a double click, a retried HTTP call)
re-queues and sends once. The rows go through the same delivery waves as a
first delivery, with the same retries, deadline and outcome attribute.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from notiflow.plans import DeliveryOutcome, RedeliveryRequest, Requeued

from workflows.delivery import BOOKKEEPING_RETRY, deliver_plan, show_outcome


@workflow.defn
class RedeliveryWorkflow:
    @workflow.run
    async def run(self, request: RedeliveryRequest) -> DeliveryOutcome:
        request = request.model_copy(update={"workflow_id": workflow.info().workflow_id})
        requeued = await workflow.execute_activity(
            "requeue_failed", request, result_type=Requeued,
            start_to_close_timeout=timedelta(minutes=2), retry_policy=BOOKKEEPING_RETRY,
        )
        workflow.set_current_details(f"{requeued.requeued} FAILED rows re-queued by {request.requested_by}")
        outcome = await deliver_plan(requeued.plan)
        show_outcome(outcome)
        return outcome
