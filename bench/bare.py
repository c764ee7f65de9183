"""The bare engine in the pipeline's shape, with no-op activities: the benchmark's baseline.

    python -m bench.bare ADDRESS TASK_QUEUE   # a worker process of its own, as `notiflow worker` is

Per event, like IssueEventWorkflow: one activity (plan), then three at once
(feed the timers — which signal-with-starts a long-lived per-issue workflow
holding a timer, like IssueSlaWorkflow — and one delivery per channel).

``VisibleBareEventWorkflow`` is the same with what notiflow's runs show operators and nothing else: started with
the three search attributes, the event's memo and a summary (``VISIBLE_START``), the timer run started with
search attributes and a summary, and at the end the patch marker and the outcome's search attribute and details
(as ``show_outcome``). ``python -m bench.cpu`` runs both: the difference is what that visibility costs the
Temporal server per event.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from notiflow.search import DELIVERY_OUTCOME, search_attributes

RETRY = RetryPolicy(maximum_attempts=3)
#: What notiflow's client starts an event's run with (besides its input): search attributes, memo, summary.
VISIBLE_START = {
    "search_attributes": search_attributes(issue_id="ISS-1", notification_type="ISSUE_ASSIGNED", priority="LOW"),
    "memo": {"event_sha256": "0" * 64},  # notiflow.client.EVENT_HASH_MEMO: a SHA-256 in hex
    "static_summary": "ISSUE_ASSIGNED · ISS-1 · LOW",
}


@workflow.defn
class BareTimerWorkflow:
    def __init__(self) -> None:
        self.observed = 0

    @workflow.signal
    def observe(self, event_id: str) -> None:
        self.observed += 1

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.observed > 0)
        await workflow.sleep(timedelta(days=1))


@workflow.defn
class BareEventWorkflow:
    @workflow.run
    async def run(self, event_id: str) -> str:
        return await plan_and_deliver(event_id, feed="bare_feed")


@workflow.defn
class VisibleBareEventWorkflow:
    @workflow.run
    async def run(self, event_id: str) -> str:
        await plan_and_deliver(event_id, feed="bare_feed_visible")
        if workflow.patched("outcome-visible"):
            workflow.upsert_search_attributes([DELIVERY_OUTCOME.value_set("SENT")])
            workflow.set_current_details("SENT · email 1 · in_app 1")
        return event_id


async def plan_and_deliver(event_id: str, *, feed: str) -> str:
    options = {"start_to_close_timeout": timedelta(seconds=30), "retry_policy": RETRY}
    await workflow.execute_activity("bare_plan", event_id, **options)
    await asyncio.gather(
        workflow.execute_activity(feed, event_id, **options),
        workflow.execute_activity("bare_deliver", event_id, **options),
        workflow.execute_activity("bare_deliver", event_id, **options),
    )
    return event_id


BARE_WORKFLOWS = [BareEventWorkflow, VisibleBareEventWorkflow, BareTimerWorkflow]


class BareActivities:
    def __init__(self, client: Client, task_queue: str):
        self.client = client
        self.task_queue = task_queue

    @activity.defn(name="bare_plan")
    async def plan(self, event_id: str) -> str:
        return event_id

    @activity.defn(name="bare_deliver")
    async def deliver(self, event_id: str) -> str:
        return event_id

    @activity.defn(name="bare_feed")
    async def feed(self, event_id: str) -> None:
        await self._start_timer(event_id)

    @activity.defn(name="bare_feed_visible")
    async def feed_visible(self, event_id: str) -> None:
        await self._start_timer(
            event_id, search_attributes=VISIBLE_START["search_attributes"], static_summary="SLA · ISS-1 · LOW"
        )

    async def _start_timer(self, event_id: str, **visible) -> None:
        await self.client.start_workflow(
            BareTimerWorkflow.run,
            id=f"bare-timer/{event_id}",
            task_queue=self.task_queue,
            start_signal="observe",
            start_signal_args=[event_id],
            **visible,
        )

    def all(self) -> list:
        return [self.plan, self.deliver, self.feed, self.feed_visible]


async def serve(address: str, task_queue: str) -> None:
    """A bare worker until SIGTERM, with the SDK's defaults and the same concurrency as `notiflow worker`."""
    from notiflow.temporal import DATA_CONVERTER

    client = await Client.connect(address, data_converter=DATA_CONVERTER)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    activities = BareActivities(client, task_queue)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=BARE_WORKFLOWS,
        activities=activities.all(),
        max_concurrent_activities=50,
    ):
        await stop.wait()


if __name__ == "__main__":
    import uvloop

    uvloop.run(serve(sys.argv[1], sys.argv[2]))
