"""RedeliveryWorkflow (id ``redeliver/{request_id}``): an operator's choice of FAILED rows, sent again once per
request id, through the same waves (same row ids, so the same Message-IDs)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.keys import REDELIVERY_WORKFLOW
from notiflow.runs import DeliveryOutcome, RedeliveryRequest
from workflows.delivery.interface import requeue_failed
from workflows.delivery.pipeline import BOOKKEEPING_RETRY, deliver_plan, show_outcome


@workflow.defn(name=REDELIVERY_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class RedeliveryWorkflow:
    @workflow.run
    async def run(self, request: RedeliveryRequest) -> DeliveryOutcome:
        request = request.model_copy(update={"workflow_id": workflow.info().workflow_id})
        requeued = await workflow.execute_activity(
            requeue_failed,
            request,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=BOOKKEEPING_RETRY,
        )
        workflow.set_current_details(f"{requeued.requeued} FAILED rows re-queued by {request.requested_by}")
        outcome = await deliver_plan(requeued.plan)
        show_outcome(outcome)
        return outcome
