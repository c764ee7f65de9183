"""The delivery pipeline every feature sends through: plan, hand digests over, wait out quiet hours, deliver
in batches, fall back for critical rows.

Deliveries a recipient wants as a digest (or that exceed the hourly rate cap) are not sent here: they
are handed to that person's DigestWorkflow, which sends them later as one message and then marks their
queue rows. The workflows of every feature (delivery, digest, sla, spike, summary, directory) share the
retry policies below; this module imports only declarations (``interface``) and types, never an
activity's body.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from notiflow.contracts import Channel, Frequency
from notiflow.keys import DELIVER_PAGES_WORKFLOW
from notiflow.runs import DeliveryOutcome, NotificationRequest
from notiflow.search import DELIVERY_OUTCOME
from workflows.delivery.interface import (
    deliver,
    mark_failed,
    plan_deliveries,
    plan_fallbacks,
    route_to_digest,
    start_unread_watches,
)
from workflows.delivery.types import (
    BatchResult,
    Delivery,
    DeliveryBatch,
    DeliveryPlan,
    DigestRoute,
    DigestRouting,
    FallbackPlan,
    FallbackRequest,
    MarkFailed,
    PagedDelivery,
)

#: Planning only touches our own database: retry it patiently; bad input is not retried.
PLAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
    non_retryable_error_types=["InvalidEvent", "ValidationError"],
)
#: A plan is one slice at most (NOTIFLOW_DELIVERY_PAGE_SIZE people; DeliverPagesWorkflow plans the rest), planned
#: in seconds; the limit is a backstop for an attempt that heartbeats but hangs.
PLAN_ATTEMPT_LIMIT = timedelta(minutes=30)
BOOKKEEPING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=20
)
#: A deliver attempt that stops heartbeating is presumed dead (its worker was killed) and retried this soon.
#: The activity heartbeats from a background task, so a slow provider does not trip it.
DELIVER_HEARTBEAT = timedelta(seconds=10)
#: One attempt may hold provider answers while the database is down; long enough to outlast a restart.
DELIVER_ATTEMPT_LIMIT = timedelta(minutes=30)
#: Marker for the outcome search attribute and run details (runs recorded before it replay without them).
OUTCOME_VISIBLE = "delivery-outcome-visible"
#: Marker for critical fallback across channels (runs recorded before it replay without it).
CRITICAL_FALLBACK = "critical-fallback"


async def run_pipeline(request: NotificationRequest) -> DeliveryOutcome:
    return (await plan_and_deliver(request))[1]


async def plan_and_deliver(request: NotificationRequest) -> tuple[DeliveryPlan, DeliveryOutcome]:
    """The pipeline, and the plan it followed (whose unread watches the event and notify runs start)."""
    plan = await workflow.execute_activity(
        plan_deliveries,
        request,
        # the activity heartbeats in the background: a killed worker's attempt is retried after this timeout
        start_to_close_timeout=PLAN_ATTEMPT_LIMIT,
        heartbeat_timeout=timedelta(minutes=2),
        retry_policy=PLAN_RETRY,
    )
    outcome = await deliver_plan(plan, request)
    show_outcome(outcome)
    return plan, outcome


def show_outcome(outcome: DeliveryOutcome) -> None:
    """Make failures findable: ``DeliveryOutcome="FAILED"`` (or PARTIAL) in the web UI, and the counts in the details."""
    if workflow.patched(OUTCOME_VISIBLE):
        workflow.upsert_search_attributes([DELIVERY_OUTCOME.value_set(outcome.verdict)])
        workflow.set_current_details(outcome.describe())


async def deliver_plan(plan: DeliveryPlan, request: NotificationRequest | None = None) -> DeliveryOutcome:
    """Digest items to the recipients' digests; the rest in waves, each after its recipients' quiet hours."""
    outcome = DeliveryOutcome(fallback=plan.fallback)
    count_planned(outcome, plan)
    delivery_retry, give_up_at = retry_for(plan)
    await deliver_deliveries(plan.deliveries, plan, request, outcome, delivery_retry, give_up_at)
    if plan.next_page is not None:
        # A large plan: the run holds its first page only; the rest is read and sent page by page by a child run
        # that continues as new before its history grows large (its input: the settings and a cursor, no ids).
        rest: DeliveryOutcome = await workflow.execute_child_workflow(
            DELIVER_PAGES_WORKFLOW,
            PagedDelivery(
                plan=plan.model_copy(update={"deliveries": [], "unread_watches": [], "next_page": None}),
                cursor=plan.next_page,
                request=request,
            ),
            id=f"pages/{plan.next_page.source_id}",  # the plan's, not this run's: a replay renames the run
            result_type=DeliveryOutcome,
        )
        merge_outcome(outcome, rest)
    return outcome


def count_planned(outcome: DeliveryOutcome, plan: DeliveryPlan) -> None:
    """Add what a plan (or one slice of it) decided while planning: skipped, failed, and put in experiments."""
    for channel, count in plan.skipped.items():
        outcome.add(channel, skipped=count)
    for channel, count in plan.failed.items():
        outcome.add(channel, failed=count)
    _add_counts(outcome.experiments, plan.experiments)


def merge_outcome(outcome: DeliveryOutcome, more: DeliveryOutcome) -> None:
    """Add the counts of ``more`` (the later pages of a plan) to ``outcome``."""
    for channel, count in more.channels.items():
        outcome.add(channel, sent=count.sent, failed=count.failed, skipped=count.skipped, digested=count.digested)
    _add_counts(outcome.fallbacks, more.fallbacks)
    _add_counts(outcome.experiments, more.experiments)


def _add_counts(counts: dict[str, int], more: dict[str, int]) -> None:
    for key, number in more.items():
        counts[key] = counts.get(key, 0) + number


async def deliver_deliveries(
    deliveries: list[Delivery],
    plan: DeliveryPlan,
    request: NotificationRequest | None,
    outcome: DeliveryOutcome,
    delivery_retry: RetryPolicy,
    give_up_at: datetime | None,
) -> None:
    """One plan's deliveries (all of them, or one page): digests handed over, the rest in waves after quiet hours."""
    digested = [d for d in deliveries if d.frequency != Frequency.IMMEDIATE]
    if digested:
        await workflow.execute_activity(
            route_to_digest,
            DigestRouting(
                items=[DigestRoute(queue_id=d.queue_id, frequency=d.frequency) for d in digested], as_of=workflow.now()
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=BOOKKEEPING_RETRY,
        )
        for delivery in digested:
            outcome.add(delivery.channel, digested=1)
    # Group by the instant each delivery may go out (quiet hours), earliest first.
    waves: dict[datetime | None, dict[Channel, list[str]]] = {}
    for delivery in deliveries:
        if delivery.frequency != Frequency.IMMEDIATE:
            continue
        waves.setdefault(delivery.not_before, {}).setdefault(delivery.channel, []).append(delivery.queue_id)
    started = workflow.now()
    for not_before in sorted(waves, key=lambda t: (t is not None, t)):
        if not_before is not None and not_before > workflow.now():
            await workflow.sleep(not_before - workflow.now())
        batches = [
            DeliveryBatch(
                channel=channel,
                queue_ids=ids[i : i + plan.batch_size],
                maximum_attempts=plan.retry.maximum_attempts,
                give_up_at=give_up_at + (workflow.now() - started) if give_up_at else None,
            )
            for channel, ids in waves[not_before].items()
            for i in range(0, len(ids), plan.batch_size)
        ]
        results = await asyncio.gather(*(_deliver(batch, delivery_retry) for batch in batches))
        for batch, result in zip(batches, results, strict=True):
            outcome.add(batch.channel, sent=result.sent, failed=result.failed)
        critical_failed = [queue_id for result in results for queue_id in result.critical_failed]
        if critical_failed and workflow.patched(CRITICAL_FALLBACK):
            await _fall_back(critical_failed, request, plan, delivery_retry, outcome)


async def _fall_back(
    queue_ids: list[str],
    request: NotificationRequest | None,
    plan: DeliveryPlan,
    retry: RetryPolicy,
    outcome: DeliveryOutcome,
) -> None:
    """Critical rows that ended FAILED go out on each person's next channel, until one takes or none is left.

    Each round moves every failed row one channel further along NOTIFLOW_CRITICAL_FALLBACK, so the
    loop ends; a fallback gets a delivery deadline of its own, counted from now.
    """
    for _ in range(len(Channel)):
        fallback: FallbackPlan = await workflow.execute_activity(
            plan_fallbacks,
            FallbackRequest(queue_ids=queue_ids, request=request),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=BOOKKEEPING_RETRY,
        )
        for route, count in fallback.routes.items():
            outcome.fallbacks[route] = outcome.fallbacks.get(route, 0) + count
        if not fallback.deliveries:
            return
        give_up_at = (
            workflow.now() + timedelta(seconds=plan.retry.deadline_seconds) if plan.retry.deadline_seconds else None
        )
        by_channel: dict[Channel, list[str]] = {}
        for delivery in fallback.deliveries:
            by_channel.setdefault(delivery.channel, []).append(delivery.queue_id)
        batches = [
            DeliveryBatch(
                channel=channel,
                queue_ids=ids[i : i + plan.batch_size],
                maximum_attempts=plan.retry.maximum_attempts,
                give_up_at=give_up_at,
            )
            for channel, ids in by_channel.items()
            for i in range(0, len(ids), plan.batch_size)
        ]
        results = await asyncio.gather(*(_deliver(batch, retry) for batch in batches))
        for batch, result in zip(batches, results, strict=True):
            outcome.add(batch.channel, sent=result.sent, failed=result.failed)
        queue_ids = [queue_id for result in results for queue_id in result.critical_failed]
        if not queue_ids:
            return


def retry_for(plan: DeliveryPlan) -> tuple[RetryPolicy, datetime | None]:
    """The deliver activity's retry policy and the instant transient failures become final.

    Transient failures are retried with capped exponential backoff until the
    plan's deadline (NOTIFLOW_DELIVERY_DEADLINE): the activity itself turns a
    row FAILED once the deadline has passed, so the policy has no attempt limit;
    a crashed attempt therefore costs nothing but a retry. Plans recorded
    before the deadline existed keep their attempt limit.
    """
    spec = plan.retry
    retry = RetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=spec.max_seconds),
        maximum_attempts=0 if spec.deadline_seconds else spec.maximum_attempts,
        non_retryable_error_types=["PermanentDeliveryError"],
    )
    give_up_at = workflow.now() + timedelta(seconds=spec.deadline_seconds) if spec.deadline_seconds else None
    return retry, give_up_at


async def _deliver(batch: DeliveryBatch, retry: RetryPolicy) -> BatchResult:
    # Backstop only: the activity gives up by itself at give_up_at; this bounds a run whose worker never returns.
    backstop = (
        batch.give_up_at - workflow.now() + DELIVER_ATTEMPT_LIMIT + 2 * retry.maximum_interval
        if batch.give_up_at and retry.maximum_interval
        else None
    )
    try:
        result: BatchResult = await workflow.execute_activity(
            deliver,
            batch,
            start_to_close_timeout=DELIVER_ATTEMPT_LIMIT if batch.give_up_at else timedelta(minutes=5),
            heartbeat_timeout=DELIVER_HEARTBEAT if batch.give_up_at else timedelta(seconds=60),
            schedule_to_close_timeout=backstop,
            retry_policy=retry,
        )
        return result
    except ActivityError as err:
        reason = str(err.cause) if err.cause else str(err)
        failed: BatchResult = await workflow.execute_activity(
            mark_failed,
            MarkFailed(queue_ids=batch.queue_ids, reason=reason),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=BOOKKEEPING_RETRY,
        )
        return failed


async def watch_unread(plan: DeliveryPlan) -> None:
    """Start the read deadline of each watched type once its deliveries are out (IssueEventWorkflow, NotifyWorkflow).

    Only when a rule is on: with every rule off, a plan has no watches and this adds nothing to the history.

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
