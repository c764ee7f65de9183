"""DeliverPagesWorkflow (id ``pages/{source id}``): the pages of a large plan after its first, a child of the run
that planned it (IssueEventWorkflow, NotifyWorkflow).

Its input holds the plan's settings and a cursor, never the ids: each page (at most ``NOTIFLOW_DELIVERY_PAGE_SIZE``
PENDING rows) is read by ``next_deliveries`` and sent as a plan's deliveries are (digests, quiet-hours waves,
batches, critical fallback). Before its history grows past ``HISTORY_BOUND`` it continues as new, carrying the
cursor and the counts so far, so a run's history stays well under Temporal's limits at any audience size.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.keys import DELIVER_PAGES_WORKFLOW
from notiflow.runs import DeliveryOutcome
from workflows.delivery.interface import next_deliveries
from workflows.delivery.pipeline import BOOKKEEPING_RETRY, deliver_deliveries, retry_for
from workflows.delivery.types import PagedDelivery

#: A run continues as new once its history is this large (bytes), or as long as its input says, or when suggested.
HISTORY_BOUND = 1_000_000


@workflow.defn(name=DELIVER_PAGES_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class DeliverPagesWorkflow:
    @workflow.run
    async def run(self, paged: PagedDelivery) -> DeliveryOutcome:
        outcome = paged.outcome
        cursor = paged.cursor
        while True:
            page = await workflow.execute_activity(
                next_deliveries,
                cursor,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=BOOKKEEPING_RETRY,
            )
            retry, give_up_at = retry_for(paged.plan)  # each page's deadline counts from when it is sent
            await deliver_deliveries(page.deliveries, paged.plan, paged.request, outcome, retry, give_up_at)
            if page.next is None:
                return outcome
            cursor = page.next
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_size() > HISTORY_BOUND
                or info.get_current_history_length() > paged.max_history_events
            ):
                workflow.continue_as_new(paged.model_copy(update={"cursor": cursor, "outcome": outcome}))
