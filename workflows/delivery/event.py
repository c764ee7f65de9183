"""IssueEventWorkflow (id ``event/{event_id}``): one issue event, delivered to everyone who must hear of it.

It also feeds the timers (the issue's SLA, the error-spike detector) with one activity alongside, and
starts the read deadlines of the types whose escalation-on-unread rule is on. One workflow per module:
the sandbox re-imports a run's module for every run, and each workflow class in it costs its decorator.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.contracts import IssueEvent
from notiflow.keys import ISSUE_EVENT_WORKFLOW
from notiflow.runs import DeliveryOutcome, NotificationRequest
from workflows.delivery.interface import feed_timers
from workflows.delivery.pipeline import BOOKKEEPING_RETRY, plan_and_deliver, watch_unread


@workflow.defn(name=ISSUE_EVENT_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
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
