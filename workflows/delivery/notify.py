"""NotifyWorkflow: an explicit notification (type, audience, data) through the same pipeline as an event —
send-test, SLA escalations, the error-spike alarm."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.keys import NOTIFY_WORKFLOW
from notiflow.runs import DeliveryOutcome, NotificationRequest
from workflows.delivery.pipeline import plan_and_deliver, watch_unread


@workflow.defn(name=NOTIFY_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class NotifyWorkflow:
    @workflow.run
    async def run(self, request: NotificationRequest) -> DeliveryOutcome:
        request = request.model_copy(
            update={
                "workflow_id": workflow.info().workflow_id,
                "run_id": workflow.info().run_id,
                "as_of": workflow.now(),
            }
        )
        plan, outcome = await plan_and_deliver(request)
        await watch_unread(plan)
        return outcome
