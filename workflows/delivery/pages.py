"""DeliverPagesWorkflow (id ``pages/{source id}``): the pages of a large plan after its first, a child of the run
that planned it (IssueEventWorkflow, NotifyWorkflow).

Its input holds the plan's settings and a cursor, never the ids. A plan planned slice by slice (every plan of
more than ``NOTIFLOW_DELIVERY_PAGE_SIZE`` people since slices) goes on slice by slice, each slice a child run of
its own (``SendSliceWorkflow``, id ``pages/{source id}/slice/{n}``), up to ``SLICES_AT_ONCE`` at once: the child
plans its slice (``plan_slice``), sends the rows that may go now as a plan's deliveries are (digests, batches,
critical fallback) and starts its read deadlines. The slice's ids live in the child's history (a few hundred
KB); this run's holds each child's counts. So planning and sending overlap without a pause: before slices were
children, a run held about two slices' plans before it had to continue as new, and it planned nothing while
the last of them were sent (bench.audience: slices planned in pairs every ~9.5 s, no mail sent while a pair was
planned). The rows waiting out quiet hours are read last, a page at a time by ``next_deliveries``, in the order
they may go — as every page of a plan recorded before slices is. Before its history grows past
``HISTORY_BOUND`` it continues as new, carrying the cursor and the counts so far (tests/delivery/test_paging.py).

Runs recorded before slices were children (no ``SLICES_AS_CHILDREN`` marker) replay their own loop:
``_send_slices_in_this_run``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.keys import DELIVER_PAGES_WORKFLOW, SEND_SLICE_WORKFLOW
from notiflow.runs import DeliveryOutcome
from workflows.delivery.interface import next_deliveries, plan_slice
from workflows.delivery.pipeline import (
    BOOKKEEPING_RETRY,
    DELIVER_HEARTBEAT,
    PLAN_RETRY,
    count_planned,
    deliver_deliveries,
    merge_outcome,
    retry_for,
    watch_unread,
)
from workflows.delivery.types import DeliveryPlan, PageCursor, PagedDelivery, PlanSlice

#: A run continues as new once its history is this large (bytes), or as long as its input says, or when suggested.
HISTORY_BOUND = 1_000_000
#: One Delivery in a payload, JSON (~110 bytes measured): a slice plan's size in the history, estimated.
DELIVERY_BYTES = 120
#: A slice (NOTIFLOW_DELIVERY_PAGE_SIZE people) is planned in seconds; this bounds an attempt that heartbeats but
#: hangs (a killed worker's attempt stops heartbeating and is retried within DELIVER_HEARTBEAT).
SLICE_ATTEMPT_LIMIT = timedelta(minutes=5)
#: Slices (child runs) planned or being sent at once: one is planned while the others are sent.
SLICES_AT_ONCE = 3
#: The patch marker of slices as child runs; runs recorded before it replay ``_send_slices_in_this_run``.
SLICES_AS_CHILDREN = "slices-as-children"
#: Before slices were children: slices being sent at once, and being planned at once, by this run.
SLICES_IN_FLIGHT = 2
SLICES_PLANNED_AT_ONCE = 2


@workflow.defn(name=DELIVER_PAGES_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class DeliverPagesWorkflow:
    @workflow.run
    async def run(self, paged: PagedDelivery) -> DeliveryOutcome:
        outcome = paged.outcome
        cursor: PageCursor | None = paged.cursor
        if paged.cursor.planned_after is not None:
            if workflow.patched(SLICES_AS_CHILDREN):
                cursor = await _send_slices(paged, paged.cursor, outcome)
            else:
                cursor = await _send_slices_in_this_run(paged, paged.cursor, outcome)
        while cursor is not None:
            page = await workflow.execute_activity(
                next_deliveries,
                cursor,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=BOOKKEEPING_RETRY,
            )
            retry, give_up_at = retry_for(paged.plan)  # each page's deadline counts from when it is sent
            await deliver_deliveries(page.deliveries, paged.plan, paged.request, outcome, retry, give_up_at)
            if page.next is None:
                break
            cursor = page.next
            if _history_is_long(paged):
                workflow.continue_as_new(paged.model_copy(update={"cursor": cursor, "outcome": outcome}))
        return outcome


@workflow.defn(name=SEND_SLICE_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class SendSliceWorkflow:
    """One slice of a large plan (``paged.cursor``), a child of DeliverPagesWorkflow: planned, sent, its read
    deadlines started; returns its counts."""

    @workflow.run
    async def run(self, paged: PagedDelivery) -> DeliveryOutcome:
        part = await _plan(paged, paged.cursor)
        outcome = DeliveryOutcome()
        count_planned(outcome, part)
        await _send_slice(paged, part, outcome)
        return outcome


async def _send_slices(paged: PagedDelivery, cursor: PageCursor, outcome: DeliveryOutcome) -> PageCursor:
    """Each slice a child run, up to ``SLICES_AT_ONCE`` at once, their counts added to ``outcome`` as they end;
    then the cursor to the rows held for quiet hours. Before the history grows long no more slices are started:
    those running end, and the run continues as new from the first slice not started."""
    slices = _slices(cursor)
    running: list[PageCursor] = []  # the slices whose child runs have not ended
    children: list[asyncio.Future[None]] = []
    started = 0

    async def send(part: PageCursor) -> None:
        try:
            sent = await workflow.execute_child_workflow(
                SendSliceWorkflow.run,
                paged.model_copy(update={"cursor": part, "outcome": DeliveryOutcome()}),
                id=f"pages/{part.source_id}/slice/{part.part}",  # the plan's, not this run's: a replay renames it
            )
            merge_outcome(outcome, sent)
        finally:
            running.remove(part)

    while started < len(slices):
        await workflow.wait_condition(lambda: len(running) < SLICES_AT_ONCE)
        if _history_is_long(paged):
            break
        running.append(slices[started])
        children.append(asyncio.ensure_future(send(slices[started])))
        started += 1
    await asyncio.gather(*children)
    if started < len(slices):
        _continue_from(paged, slices[started:], outcome)
    return PageCursor(source_id=cursor.source_id, page_size=cursor.page_size, after_id="", held_only=True)


def _continue_from(paged: PagedDelivery, rest: list[PageCursor], outcome: DeliveryOutcome) -> None:
    """Continue as new from the first slice of ``rest``, the others as its ``slice_ends``."""
    following = rest[0].model_copy(update={"slice_ends": [s.planned_through for s in rest[1:-1]]})
    workflow.continue_as_new(paged.model_copy(update={"cursor": following, "outcome": outcome}))


async def _send_slices_in_this_run(paged: PagedDelivery, cursor: PageCursor, outcome: DeliveryOutcome) -> PageCursor:
    """Before slices were children: plan the slices, up to ``SLICES_PLANNED_AT_ONCE`` at once, and send each as it
    is planned, up to ``SLICES_IN_FLIGHT`` at once; then the cursor to the rows held for quiet hours.

    Planning overlaps sending (on the workers' other processes, where there are more), and the SMTP connections
    do not idle while a slice's slowest batch ends. Before the history grows long, no more slices are started;
    those planned are sent, and the run continues as new from the first slice not planned.
    """
    slices = _slices(cursor)
    planning: deque[workflow.ActivityHandle[DeliveryPlan]] = deque()
    sending: list[asyncio.Future[None]] = []
    started = 0
    continuing = False
    slice_bytes = 0  # the largest slice's plan so far, as its result lands in the history
    while planning or (started < len(slices) and not continuing):
        while started < len(slices) and len(planning) < SLICES_PLANNED_AT_ONCE and not continuing:
            planning.append(_plan(paged, slices[started]))
            started += 1
        part = await planning.popleft()
        count_planned(outcome, part)
        sending.append(asyncio.ensure_future(_send_slice(paged, part, outcome)))
        if len(sending) >= SLICES_IN_FLIGHT:
            await sending.pop(0)
        slice_bytes = max(slice_bytes, DELIVERY_BYTES * len(part.deliveries))
        # continue as new before the plans in flight and the next one could take the history past the bound
        expected = workflow.info().get_current_history_size() + (len(planning) + 1) * slice_bytes
        continuing = continuing or (started < len(slices) and (_history_is_long(paged) or expected > HISTORY_BOUND))
    await asyncio.gather(*sending)
    if started < len(slices):
        _continue_from(paged, slices[started:], outcome)
    return PageCursor(source_id=cursor.source_id, page_size=cursor.page_size, after_id="", held_only=True)


def _slices(cursor: PageCursor) -> list[PageCursor]:
    """The cursor's slice and every one after it: the people after one end up to the next (the last: to the end)."""
    bounds = [cursor.planned_after, *([cursor.planned_through] if cursor.planned_through else []), *cursor.slice_ends]
    return [
        cursor.model_copy(
            update={
                "planned_after": after,
                "planned_through": bounds[i + 1] if i + 1 < len(bounds) else None,
                "slice_ends": [],
                "part": cursor.part + i,
            }
        )
        for i, after in enumerate(bounds)
    ]


async def _send_slice(paged: PagedDelivery, part: DeliveryPlan, outcome: DeliveryOutcome) -> None:
    retry, give_up_at = retry_for(paged.plan)  # each slice's deadline counts from when it is sent
    await deliver_deliveries(part.deliveries, paged.plan, paged.request, outcome, retry, give_up_at)
    await watch_unread(part)


def _plan(paged: PagedDelivery, cursor: PageCursor) -> workflow.ActivityHandle[DeliveryPlan]:
    assert paged.request is not None  # a plan planned slice by slice always carries its request
    return workflow.start_activity(
        plan_slice,
        PlanSlice(request=paged.request, cursor=cursor),
        start_to_close_timeout=SLICE_ATTEMPT_LIMIT,
        heartbeat_timeout=DELIVER_HEARTBEAT,  # the attempt of a killed worker is retried this soon
        retry_policy=PLAN_RETRY,
    )


def _history_is_long(paged: PagedDelivery) -> bool:
    info = workflow.info()
    return (
        info.is_continue_as_new_suggested()
        or info.get_current_history_size() > HISTORY_BOUND
        or info.get_current_history_length() > paged.max_history_events
    )
