"""UnreadEscalationWorkflow: escalation on unread, a durable timer per notification and type.

If none of the watched rows of a person was read (in-app) or clicked before the deadline, the
notification goes out again on the rule's channel to that person — through the ordinary pipeline, so
their preferences for that channel, quiet hours (unless critical), suppressions and the rate cap apply,
and each escalated row records why (``context_data.escalated_from``). An issue resolved or closed
meanwhile ends it with nothing sent. The wait is a Temporal timer: a worker or server restart changes
nothing, and the run shows in the web UI what it waits for.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.runs import DeliveryOutcome
from workflows.delivery.interface import find_unread
from workflows.delivery.pipeline import BOOKKEEPING_RETRY, run_pipeline
from workflows.delivery.types import UnreadWatch


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class UnreadEscalationWorkflow:
    @workflow.run
    async def run(self, watch: UnreadWatch) -> DeliveryOutcome | None:
        why = f"unread after {watch.after_minutes} min"
        workflow.set_current_details(
            f"{watch.notification_type} to {len(watch.recipient_ids)} people: {watch.channel} for those who have "
            f"neither read nor clicked it in {watch.after_minutes} min"
        )
        await workflow.sleep(timedelta(minutes=watch.after_minutes), summary="read deadline")
        unread = await workflow.execute_activity(
            find_unread,
            watch,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=BOOKKEEPING_RETRY,
        )
        if unread.issue_closed or not unread.recipient_ids:
            workflow.set_current_details(
                f"{watch.issue_id} was resolved or closed: nothing sent"
                if unread.issue_closed
                else "everyone read it in time: nothing sent"
            )
            return None
        outcome = await run_pipeline(
            watch.request.model_copy(
                update={
                    "source_id": f"unread/{watch.request.source_id}",
                    "channels": [watch.channel],
                    "only_recipients": unread.recipient_ids,
                    "escalated_from": why,
                    "workflow_id": workflow.info().workflow_id,
                    "run_id": workflow.info().run_id,
                    "as_of": workflow.now(),
                }
            )
        )
        return outcome
