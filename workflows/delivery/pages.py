"""DeliverPagesWorkflow (id ``pages/{source id}``): the pages of a large plan after its first, a child of the run
that planned it (IssueEventWorkflow, NotifyWorkflow).

Its input holds the plan's settings and a cursor, never the ids. A plan planned slice by slice (every plan of
more than ``NOTIFLOW_DELIVERY_PAGE_SIZE`` people since slices) goes on slice by slice: ``plan_slice`` plans two
slices at once while up to two are sent, so planning and sending overlap (on other worker processes, where there
are more) and sending starts after one slice rather than the whole audience. Each slice's rows that may go now
are sent as a plan's deliveries are (digests, batches, critical fallback), and its read deadlines start. The
rows waiting out quiet hours are read last, a page at a time by ``next_deliveries``, in the order they may go —
as every page of a plan recorded before slices is. Before its history grows past ``HISTORY_BOUND`` (counting
the slice plans still in flight) it continues as new, carrying the cursor and the counts so far, so a run's
history stays near 1 MB at any audience size (tests/delivery/test_paging.py checks it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.keys import DELIVER_PAGES_WORKFLOW
from notiflow.runs import DeliveryOutcome
from workflows.delivery.interface import next_deliveries, plan_slice
from workflows.delivery.pipeline import (
    BOOKKEEPING_RETRY,
    DELIVER_HEARTBEAT,
    PLAN_RETRY,
    count_planned,
    deliver_deliveries,
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
#: Slices being sent at once, and being planned at once (on as many worker processes as poll, or one).
SLICES_IN_FLIGHT = 2
SLICES_PLANNED_AT_ONCE = 2


@workflow.defn(name=DELIVER_PAGES_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class DeliverPagesWorkflow:
    @workflow.run
    async def run(self, paged: PagedDelivery) -> DeliveryOutcome:
        outcome = paged.outcome
        cursor: PageCursor | None = paged.cursor
        if paged.cursor.planned_after is not None:
            cursor = await _send_slices(paged, paged.cursor, outcome)
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


async def _send_slices(paged: PagedDelivery, cursor: PageCursor, outcome: DeliveryOutcome) -> PageCursor:
    """Plan the slices, up to ``SLICES_PLANNED_AT_ONCE`` at once, and send each as it is planned, up to
    ``SLICES_IN_FLIGHT`` at once; then the cursor to the rows held for quiet hours.

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
        rest = slices[started:]
        following = rest[0].model_copy(update={"slice_ends": [s.planned_through for s in rest[1:-1]]})
        workflow.continue_as_new(paged.model_copy(update={"cursor": following, "outcome": outcome}))
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
