"""A large plan is delivered in pages (fake activities on the time-skipping server): no payload holds more than a
page of ids, every id is delivered once, and the pages' run continues as new before its history grows long."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from activities.implements import implements
from notiflow.contracts import Channel, Frequency, NotificationType
from notiflow.runs import Audience, NotificationRequest
from tests.payloads import payloads
from workers.main import WORKFLOW_RUNNER
from workers.registry import ALL_WORKFLOWS
from workflows.delivery import interface
from workflows.delivery.notify import NotifyWorkflow
from workflows.delivery.pages import DeliverPagesWorkflow
from workflows.delivery.types import (
    BatchResult,
    Delivery,
    DeliveryBatch,
    DeliveryPage,
    DeliveryPlan,
    DigestRouting,
    MarkFailed,
    PageCursor,
    PagedDelivery,
    RetrySpec,
)

PAGE = 20
PAGES = 10


class FakePagedDelivery:
    """Serves a plan of PAGES × PAGE deliveries a page at a time; records every deliver batch."""

    def __init__(self, deliveries: list[Delivery]):
        self.source = f"big-{uuid.uuid4().hex[:8]}"
        self.deliveries = deliveries
        self.batches: list[DeliveryBatch] = []
        self.pages_read: list[int] = []
        self.digested: list[str] = []

    def page(self, start: int) -> DeliveryPage:
        chunk = self.deliveries[start : start + PAGE]
        following = None
        if start + PAGE < len(self.deliveries):
            following = PageCursor(source_id=self.source, page_size=PAGE, after_id=str(start + PAGE))
        return DeliveryPage(deliveries=chunk, next=following)

    @implements(interface.plan_deliveries)
    async def plan_deliveries(self, request: NotificationRequest) -> DeliveryPlan:
        first = self.page(0)
        return DeliveryPlan(
            deliveries=first.deliveries,
            next_page=first.next,
            total=len(self.deliveries),
            batch_size=7,
            retry=RetrySpec(maximum_attempts=3, initial_seconds=0.1, max_seconds=1, deadline_seconds=60),
        )

    @implements(interface.next_deliveries)
    async def next_deliveries(self, cursor: PageCursor) -> DeliveryPage:
        start = int(cursor.after_id)  # the fake's cursor: an offset
        self.pages_read.append(start)
        return self.page(start)

    @implements(interface.deliver)
    async def deliver(self, batch: DeliveryBatch) -> BatchResult:
        self.batches.append(batch)
        return BatchResult(sent=len(batch.queue_ids))

    @implements(interface.mark_failed)
    async def mark_failed(self, request: MarkFailed) -> BatchResult:
        return BatchResult(failed=len(request.queue_ids))

    @implements(interface.route_to_digest)
    async def route_to_digest(self, routing: DigestRouting) -> int:
        self.digested += [item.queue_id for item in routing.items]
        return len(routing.items)

    def activities(self) -> list:
        return [self.plan_deliveries, self.next_deliveries, self.deliver, self.mark_failed, self.route_to_digest]


def _deliveries(now) -> list[Delivery]:
    out = []
    for i in range(PAGES * PAGE):
        if i % 50 == 49:
            out.append(Delivery(queue_id=f"q-{i}", channel=Channel.EMAIL, frequency=Frequency.DAILY))
        elif i >= PAGES * PAGE - 15:  # the last rows wait out quiet hours (pages are ordered by it)
            out.append(Delivery(queue_id=f"q-{i}", channel=Channel.EMAIL, not_before=now + timedelta(hours=3)))
        else:
            out.append(Delivery(queue_id=f"q-{i}", channel=Channel.EMAIL if i % 2 else Channel.IN_APP))
    return out


def _payload_ids(history) -> int:
    """The most queue ids any one payload of the history carries."""
    return max(payload.data.count(b'"q-') for payload in payloads(history))


async def test_a_large_plan_is_delivered_page_by_page_each_id_once(time_env):
    now = await time_env.get_current_time()
    fake = FakePagedDelivery(_deliveries(now))
    queue = f"paged-{uuid.uuid4().hex[:8]}"
    request = NotificationRequest(
        source_id=fake.source, notification_type=NotificationType.ISSUE_CREATED, audience=Audience(admins=True)
    )
    async with Worker(
        time_env.client,
        task_queue=queue,
        workflows=ALL_WORKFLOWS,
        activities=fake.activities(),
        workflow_runner=WORKFLOW_RUNNER,
    ):
        handle = await time_env.client.start_workflow(
            NotifyWorkflow.run, request, id=f"notify/{queue}", task_queue=queue
        )
        outcome = await handle.result()
        parent = await handle.fetch_history()
        child = await time_env.client.get_workflow_handle(f"pages/{fake.source}").fetch_history()

    sent = [q for b in fake.batches for q in b.queue_ids]
    immediate = [d.queue_id for d in fake.deliveries if d.frequency == Frequency.IMMEDIATE]
    assert sorted(sent) == sorted(immediate) and len(sent) == len(set(sent))  # every id once
    assert sorted(fake.digested) == sorted(d.queue_id for d in fake.deliveries if d.frequency != Frequency.IMMEDIATE)
    assert fake.pages_read == [PAGE * i for i in range(1, PAGES)]
    assert all(len(b.queue_ids) <= 7 for b in fake.batches)
    assert _payload_ids(parent) <= PAGE and _payload_ids(child) <= PAGE  # no payload holds more than a page
    assert outcome.channels["EMAIL"].sent + outcome.channels["IN_APP"].sent == len(immediate)
    assert outcome.channels["EMAIL"].digested == PAGES * PAGE // 50


async def test_the_pages_run_continues_as_new_before_its_history_grows_long(time_env):
    now = await time_env.get_current_time()
    fake = FakePagedDelivery(_deliveries(now))
    queue = f"paged-{uuid.uuid4().hex[:8]}"
    first = fake.page(0)
    assert first.next is not None
    paged = PagedDelivery(
        plan=DeliveryPlan(
            batch_size=7,
            retry=RetrySpec(maximum_attempts=3, initial_seconds=0.1, max_seconds=1, deadline_seconds=60),
        ),
        cursor=first.next,
        max_history_events=30,
    )
    async with Worker(
        time_env.client,
        task_queue=queue,
        workflows=ALL_WORKFLOWS,
        activities=fake.activities(),
        workflow_runner=WORKFLOW_RUNNER,
    ):
        handle = await time_env.client.start_workflow(
            DeliverPagesWorkflow.run, paged, id=f"pages/{queue}", task_queue=queue
        )
        outcome = await handle.result()
        first_handle = time_env.client.get_workflow_handle(f"pages/{queue}", run_id=handle.first_execution_run_id)
        first_run = await first_handle.fetch_history()
    sent = [q for b in fake.batches for q in b.queue_ids]
    rest = [d.queue_id for d in fake.deliveries[PAGE:] if d.frequency == Frequency.IMMEDIATE]
    assert sorted(sent) == sorted(rest) and len(sent) == len(set(sent))
    assert outcome.channels["EMAIL"].sent + outcome.channels["IN_APP"].sent == len(rest)  # counts carried across runs
    assert first_run.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert fake.pages_read == [PAGE * i for i in range(1, PAGES)]  # no page read twice across runs
