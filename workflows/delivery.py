"""The delivery steps every notifying workflow shares: plan, wait out quiet hours, deliver in batches.

Deliveries a recipient wants as a digest (or that exceed the hourly rate cap)
are not sent here: they are handed to that person's DigestWorkflow, which sends
them later as one message and then marks their queue rows.

Activities are called by name so this module (re-imported by the sandbox for
every workflow run) stays light: no SQLAlchemy, SMTP or Jinja2 here.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from notiflow.contracts import Frequency
    from notiflow.plans import BatchResult, DeliveryBatch, DeliveryOutcome, DeliveryPlan, MarkFailed, NotificationRequest
    from notiflow.timers import DigestRoute, DigestRouting

#: Planning only touches our own database: retry it patiently; bad input is not retried.
PLAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
    non_retryable_error_types=["InvalidEvent", "ValidationError"],
)
BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                                maximum_attempts=20)


async def run_pipeline(request: NotificationRequest) -> DeliveryOutcome:
    plan = await workflow.execute_activity(
        "plan_deliveries", request, result_type=DeliveryPlan,
        start_to_close_timeout=timedelta(minutes=2), retry_policy=PLAN_RETRY,
    )
    return await deliver_plan(plan)


async def deliver_plan(plan: DeliveryPlan) -> DeliveryOutcome:
    """Digest items to the recipients' digests; the rest in waves, each after its recipients' quiet hours."""
    outcome = DeliveryOutcome()
    for channel, count in plan.skipped.items():
        outcome.add(channel, skipped=count)
    for channel, count in plan.failed.items():
        outcome.add(channel, failed=count)
    delivery_retry = RetryPolicy(
        initial_interval=timedelta(seconds=plan.retry.initial_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=plan.retry.max_seconds),
        maximum_attempts=plan.retry.maximum_attempts,
        non_retryable_error_types=["PermanentDeliveryError"],
    )
    digested = [d for d in plan.deliveries if d.frequency != Frequency.IMMEDIATE]
    if digested:
        await workflow.execute_activity(
            "route_to_digest", DigestRouting(items=[DigestRoute(queue_id=d.queue_id, frequency=d.frequency)
                                                    for d in digested], as_of=workflow.now()),
            result_type=int, start_to_close_timeout=timedelta(seconds=30), retry_policy=BOOKKEEPING_RETRY,
        )
        for delivery in digested:
            outcome.add(delivery.channel, digested=1)
    # Group by the instant each delivery may go out (quiet hours), earliest first.
    waves: dict = {}
    for delivery in plan.deliveries:
        if delivery.frequency != Frequency.IMMEDIATE:
            continue
        waves.setdefault(delivery.not_before, {}).setdefault(delivery.channel, []).append(delivery.queue_id)
    for not_before in sorted(waves, key=lambda t: (t is not None, t)):
        if not_before is not None and not_before > workflow.now():
            await workflow.sleep(not_before - workflow.now())
        batches = [
            DeliveryBatch(channel=channel, queue_ids=ids[i:i + plan.batch_size],
                          maximum_attempts=plan.retry.maximum_attempts)
            for channel, ids in waves[not_before].items()
            for i in range(0, len(ids), plan.batch_size)
        ]
        results = await asyncio.gather(*(_deliver(batch, delivery_retry) for batch in batches))
        for batch, result in zip(batches, results):
            outcome.add(batch.channel, sent=result.sent, failed=result.failed)
    return outcome


async def _deliver(batch: DeliveryBatch, retry: RetryPolicy) -> BatchResult:
    try:
        return await workflow.execute_activity(
            "deliver", batch, result_type=BatchResult,
            start_to_close_timeout=timedelta(minutes=5), heartbeat_timeout=timedelta(seconds=60),
            retry_policy=retry,
        )
    except ActivityError as err:
        reason = str(err.cause) if err.cause else str(err)
        return await workflow.execute_activity(
            "mark_failed", MarkFailed(queue_ids=batch.queue_ids, reason=reason), result_type=BatchResult,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=BOOKKEEPING_RETRY,
        )
