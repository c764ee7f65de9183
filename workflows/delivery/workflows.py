"""Delivery: the workflows that tell people something.

- ``IssueEventWorkflow`` (id ``event/{event_id}``): one issue event, delivered to everyone who must hear of it;
  it also feeds the timers (the issue's SLA, the error-spike detector) with one activity alongside.
- ``NotifyWorkflow``: an explicit notification (type, audience, data) through the same path — send-test,
  escalations, summaries, alarms.
- ``RedeliveryWorkflow`` (id ``redeliver/{request_id}``): an operator's choice of FAILED rows, sent again once
  per request id, through the same waves.
- ``UnreadEscalationWorkflow`` (id ``unread/{source_id}/{type}``): escalation on unread — started by the event's
  (or notify) run once its deliveries are out, for each type whose rule is on.

The steps they share with every feature are in ``pipeline``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from notiflow.contracts import IssueEvent
from notiflow.keys import ISSUE_EVENT_WORKFLOW, NOTIFY_WORKFLOW, REDELIVERY_WORKFLOW
from notiflow.runs import DeliveryOutcome, NotificationRequest, RedeliveryRequest
from workflows.delivery.interface import feed_timers, requeue_failed, start_unread_watches
from workflows.delivery.pipeline import BOOKKEEPING_RETRY, deliver_plan, plan_and_deliver, show_outcome
from workflows.delivery.types import DeliveryPlan
from workflows.delivery.unread import UnreadEscalationWorkflow


@workflow.defn(name=ISSUE_EVENT_WORKFLOW)
class IssueEventWorkflow:
    @workflow.run
    async def run(self, event: IssueEvent) -> DeliveryOutcome:
        request = NotificationRequest(
            source_id=event.event_id,
            event=event,
            workflow_id=workflow.info().workflow_id,
            run_id=workflow.info().run_id,
            as_of=workflow.now(),
        )
        feeding = workflow.start_activity(
            feed_timers,
            event,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=BOOKKEEPING_RETRY,
        )
        plan, outcome = await plan_and_deliver(request)
        await watch_unread(plan)
        await feeding
        return outcome


@workflow.defn(name=NOTIFY_WORKFLOW)
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


@workflow.defn(name=REDELIVERY_WORKFLOW)
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


async def watch_unread(plan: DeliveryPlan) -> None:
    """Start the read deadline of each watched type, once its deliveries are out (only when a rule is on).

    The deadline is a run of its own (``UnreadEscalationWorkflow``, started by an activity as the SLA is),
    not a child: the event's run ends at once, and the deadline — a durable timer — outlives it.
    """
    if plan.unread_watches:
        await workflow.execute_activity(
            start_unread_watches,
            plan.unread_watches,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=BOOKKEEPING_RETRY,
        )


WORKFLOWS = [IssueEventWorkflow, NotifyWorkflow, RedeliveryWorkflow, UnreadEscalationWorkflow]
