"""A large plan is delivered in pages (fake activities on the time-skipping server): no payload holds more than a
page of ids, every id is delivered once, and the pages' run continues as new before its history grows long; a
plan planned slice by slice plans each slice while the one before is sent, and sends the held rows last."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from activities.implements import implements
from notiflow.contracts import Channel, Frequency, NotificationType
from notiflow.runs import Audience, NotificationRequest
from tests.payloads import payloads
from tests.time_skipping import run_on_fake
from workers.deployment import deployment_config, deployment_version, make_current_and_wait
from workers.main import WORKFLOW_RUNNER
from workers.registry import ALL_WORKFLOWS
from workflows.delivery import interface
from workflows.delivery.notify import NotifyWorkflow
from workflows.delivery.pages import HISTORY_BOUND, SLICES_AT_ONCE, DeliverPagesWorkflow
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
    PlanSlice,
    RetrySpec,
    UnreadWatch,
)

PAGE = 20
PAGES = 10


class FakeSending:
    """What both fakes send with: each deliver batch recorded (and a hook after it), digests and failures counted."""

    def __init__(self) -> None:
        self.batches: list[DeliveryBatch] = []
        self.digested: list[str] = []

    @implements(interface.deliver)
    async def deliver(self, batch: DeliveryBatch) -> BatchResult:
        self.batches.append(batch)
        await self.sent(batch)
        return BatchResult(sent=len(batch.queue_ids))

    async def sent(self, batch: DeliveryBatch) -> None:
        pass

    @implements(interface.mark_failed)
    async def mark_failed(self, request: MarkFailed) -> BatchResult:
        return BatchResult(failed=len(request.queue_ids))

    @implements(interface.route_to_digest)
    async def route_to_digest(self, routing: DigestRouting) -> int:
        self.digested += [item.queue_id for item in routing.items]
        return len(routing.items)


class FakePagedDelivery(FakeSending):
    """Serves a plan of PAGES × PAGE deliveries a page at a time; records every deliver batch."""

    def __init__(self, deliveries: list[Delivery]):
        super().__init__()
        self.source = f"big-{uuid.uuid4().hex[:8]}"
        self.deliveries = deliveries
        self.pages_read: list[int] = []

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
            batch_size=7,
            retry=RetrySpec(maximum_attempts=3, initial_seconds=0.1, max_seconds=1, deadline_seconds=60),
        )

    @implements(interface.next_deliveries)
    async def next_deliveries(self, cursor: PageCursor) -> DeliveryPage:
        start = int(cursor.after_id)  # the fake's cursor: an offset
        self.pages_read.append(start)
        return self.page(start)

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
    request = NotificationRequest(
        source_id=fake.source, notification_type=NotificationType.ISSUE_CREATED, audience=Audience(admins=True)
    )
    handle, outcome = await run_on_fake(time_env, fake, NotifyWorkflow.run, request, "notify")
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
    handle, outcome = await run_on_fake(time_env, fake, DeliverPagesWorkflow.run, paged, "pages")
    first_handle = time_env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    first_run = await first_handle.fetch_history()
    sent = [q for b in fake.batches for q in b.queue_ids]
    rest = [d.queue_id for d in fake.deliveries[PAGE:] if d.frequency == Frequency.IMMEDIATE]
    assert sorted(sent) == sorted(rest) and len(sent) == len(set(sent))
    assert outcome.channels["EMAIL"].sent + outcome.channels["IN_APP"].sent == len(rest)  # counts carried across runs
    assert first_run.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert fake.pages_read == [PAGE * i for i in range(1, PAGES)]  # no page read twice across runs


SLICES = 5
SLICE = 10  # deliveries per slice: 8 now, 1 into a digest, 1 after quiet hours


class FakeSlicedPlan(FakeSending):
    """Serves a plan planned slice by slice: ``plan_slice`` gives each slice's rows to send now, and the rows
    held for quiet hours are read last (``held_only``) a page of two at a time. Logs when each slice is planned
    and when each slice's batches end, so a test sees whether planning overlaps sending."""

    def __init__(self, now, slices: int = SLICES, per_slice: int = SLICE, batch_size: int = 4):
        super().__init__()
        self.count, self.per_slice, self.batch_size = slices, per_slice, batch_size
        self.source = f"sliced-{uuid.uuid4().hex[:8]}"
        self.slices = [
            [
                Delivery(queue_id=f"q-{k}-{i}", channel=Channel.EMAIL if i % 2 else Channel.IN_APP)
                if i < self.per_slice - 2
                else Delivery(queue_id=f"q-{k}-{i}", channel=Channel.EMAIL, frequency=Frequency.DAILY)
                if i == self.per_slice - 2
                else Delivery(queue_id=f"q-{k}-{i}", channel=Channel.EMAIL, not_before=now + timedelta(hours=3 + k))
                for i in range(self.per_slice)
            ]
            for k in range(self.count)
        ]
        self.held = [d for deliveries in self.slices for d in deliveries if d.waits_out_quiet_hours]
        self.log: list[tuple[str, int]] = []
        self.watched: list[int] = []

    def slice_plan(self, k: int) -> DeliveryPlan:
        following = None
        if k == 0:  # the first slice says where the others end: slice k is the people after u-(k-1) up to u-k
            ends = [f"u-{i}" for i in range(self.count - 1)]
            following = PageCursor(
                source_id=self.source,
                page_size=self.per_slice,
                after_id="",
                planned_after=ends[0],
                planned_through=ends[1],
                slice_ends=ends[2:],
                part=1,
            )
        request = NotificationRequest(source_id=self.source, notification_type=NotificationType.ISSUE_CREATED)
        return DeliveryPlan(
            deliveries=[d for d in self.slices[k] if not d.waits_out_quiet_hours],
            next_page=following,
            skipped={"EMAIL": 1},
            batch_size=self.batch_size,
            retry=RetrySpec(maximum_attempts=3, initial_seconds=0.1, max_seconds=1, deadline_seconds=60),
            unread_watches=[
                UnreadWatch(
                    request=request,
                    notification_type=NotificationType.ISSUE_CREATED,
                    recipient_ids=[f"u-{k}"],
                    after_minutes=60,
                    channel=Channel.EMAIL,
                    part=k,
                )
            ],
        )

    @implements(interface.plan_deliveries)
    async def plan_deliveries(self, request: NotificationRequest) -> DeliveryPlan:
        return self.slice_plan(0)

    @implements(interface.plan_slice)
    async def plan_slice(self, planning: PlanSlice) -> DeliveryPlan:
        k = planning.cursor.part
        assert planning.request.source_id == self.source and planning.cursor.planned_after == f"u-{k - 1}"
        assert planning.cursor.planned_through == (f"u-{k}" if k < self.count - 1 else None)
        self.log.append(("planning", k))
        await asyncio.sleep(0.2)
        self.log.append(("planned", k))
        return self.slice_plan(k)

    @implements(interface.next_deliveries)
    async def next_deliveries(self, cursor: PageCursor) -> DeliveryPage:
        assert cursor.held_only  # only the held rows are read by page
        start = int(cursor.after_id or 0)
        following = None
        if start + 2 < len(self.held):  # pages of two (the fake's)
            following = cursor.model_copy(update={"after_id": str(start + 2)})
        return DeliveryPage(deliveries=self.held[start : start + 2], next=following)

    async def sent(self, batch: DeliveryBatch) -> None:
        await asyncio.sleep(0.3)  # a slice takes a while to send: long enough to plan the next meanwhile
        _, k, i = batch.queue_ids[0].split("-")
        self.log.append(("sent held" if int(i) == self.per_slice - 1 else "sent", int(k)))

    @implements(interface.start_unread_watches)
    async def start_unread_watches(self, watches: list[UnreadWatch]) -> int:
        self.watched += [watch.part for watch in watches]
        return len(watches)

    def activities(self) -> list:
        return [
            self.plan_deliveries,
            self.plan_slice,
            self.next_deliveries,
            self.deliver,
            self.mark_failed,
            self.route_to_digest,
            self.start_unread_watches,
        ]

    def rest(self, max_history_events: int = 5_000) -> PagedDelivery:
        """The slices after the first, as the event's run hands them to ``DeliverPagesWorkflow``."""
        first = self.slice_plan(0)
        assert first.next_page is not None
        return PagedDelivery(
            plan=first.model_copy(update={"deliveries": [], "unread_watches": [], "next_page": None}),
            cursor=first.next_page,
            request=NotificationRequest(source_id=self.source, notification_type=NotificationType.ISSUE_CREATED),
            max_history_events=max_history_events,
        )

    def check_sent_once(self, batches: list[DeliveryBatch], slices: range) -> None:
        """Each row of ``slices`` to send now, and every held row (the first slice's too), sent once."""
        sent = [q for b in batches for q in b.queue_ids]
        digested = self.digested_ids()
        now = [d.queue_id for k in slices for d in self.slices[k] if not d.waits_out_quiet_hours]
        wanted = [d.queue_id for d in self.held] + [q for q in now if q not in digested]
        assert sorted(sent) == sorted(wanted) and len(sent) == len(set(sent))
        held = [q for b in batches for q in b.queue_ids if q.endswith(f"-{self.per_slice - 1}")]
        assert sent[-len(held) :] == held == [d.queue_id for d in self.held]  # last, in the order they may go

    def digested_ids(self) -> set[str]:
        return {d.queue_id for deliveries in self.slices for d in deliveries if d.frequency != Frequency.IMMEDIATE}


async def test_a_sliced_plan_plans_slices_while_others_are_sent(time_env):
    fake = FakeSlicedPlan(await time_env.get_current_time())
    request = NotificationRequest(
        source_id=fake.source, notification_type=NotificationType.ISSUE_CREATED, audience=Audience(admins=True)
    )
    handle, outcome = await run_on_fake(time_env, fake, NotifyWorkflow.run, request, "notify")

    fake.check_sent_once(fake.batches, range(SLICES))
    assert sorted(entry for entry in fake.log if entry[0] == "planned") == [("planned", k) for k in range(1, SLICES)]
    # SLICES_AT_ONCE slices (child runs) at once, each sent as it is planned, a new one started as one ends
    assert fake.log.index(("planning", SLICES_AT_ONCE)) < fake.log.index(("planned", 1)), fake.log
    assert ("planning", SLICES_AT_ONCE + 1) not in fake.log[: fake.log.index(("planned", 1))], fake.log
    for k in range(1, SLICES - SLICES_AT_ONCE):
        last_sent = max(i for i, entry in enumerate(fake.log) if entry == ("sent", k))
        assert fake.log.index(("planning", k + SLICES_AT_ONCE)) > last_sent, fake.log  # not before one ends
    assert sorted(fake.digested) == sorted(f"q-{k}-{SLICE - 2}" for k in range(SLICES))
    assert sorted(fake.watched) == list(range(SLICES))  # each slice's read deadline, its own run
    assert outcome.channels["EMAIL"].skipped == SLICES  # every slice's planning counts reach the event's run
    assert outcome.channels["EMAIL"].digested == SLICES
    assert outcome.channels["EMAIL"].sent + outcome.channels["IN_APP"].sent == SLICES * (SLICE - 1)


async def test_a_sliced_plan_continues_as_new_without_planning_a_slice_twice(time_env):
    fake = FakeSlicedPlan(await time_env.get_current_time())
    handle, outcome = await run_on_fake(time_env, fake, DeliverPagesWorkflow.run, fake.rest(30), "pages")
    first_run = await time_env.client.get_workflow_handle(
        handle.id, run_id=handle.first_execution_run_id
    ).fetch_history()

    assert first_run.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert sorted(entry for entry in fake.log if entry[0] == "planned") == [("planned", k) for k in range(1, SLICES)]
    fake.check_sent_once(fake.batches, range(1, SLICES))
    assert outcome.channels["EMAIL"].skipped == SLICES - 1  # counts carried across runs
    assert outcome.channels["EMAIL"].sent + outcome.channels["IN_APP"].sent == (SLICES - 1) * (SLICE - 2) + SLICES


async def test_a_slices_plan_lands_in_its_own_run_and_the_pages_run_holds_counts(time_env):
    """Slices whose plans are ~250 KB each in the history: each lands in its slice's child run, whose history
    stays under ``HISTORY_BOUND``; the pages run's holds each child's counts, a few KB whatever the slice size
    (before slices were children, two plans filled a run's 1 MB and it continued as new, pausing the sending)."""
    fake = FakeSlicedPlan(await time_env.get_current_time(), slices=8, per_slice=3000, batch_size=1000)
    handle, _ = await run_on_fake(time_env, fake, DeliverPagesWorkflow.run, fake.rest(), "pages")

    async def size(workflow_id: str, run_id: str | None = None) -> tuple[int, bool]:
        history = await time_env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        continued = history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        return sum(event.ByteSize() for event in history.events), continued

    pages, continued = await size(handle.id, handle.first_execution_run_id)
    slices = [(await size(f"pages/{fake.source}/slice/{k}"))[0] for k in range(1, 8)]
    assert not continued and pages < 100_000, pages
    assert all(250_000 < s < HISTORY_BOUND for s in slices), slices
    fake.check_sent_once(fake.batches, range(1, 8))


class FakeHungSlice(FakeSlicedPlan):
    """Slice 2's first attempt never returns and never heartbeats: its worker died, as far as Temporal can tell."""

    def __init__(self, now):
        super().__init__(now)
        self.attempts: list[int] = []
        # every row goes now: on the dev server's real clock nothing may wait hours for quiet hours
        self.slices = [[d.model_copy(update={"not_before": None}) for d in rows] for rows in self.slices]
        self.held = []

    @implements(interface.plan_slice)
    async def plan_slice(self, planning: PlanSlice) -> DeliveryPlan:
        if planning.cursor.part == 2:
            self.attempts.append(activity.info().attempt)
            if activity.info().attempt == 1:
                await asyncio.sleep(3600)
        return self.slice_plan(planning.cursor.part)


async def test_a_slice_whose_worker_died_is_planned_again_within_seconds(temporal_client, settings):
    """On the dev server, in real time (the time-skipping server may jump to the attempt's limit instead): the dead
    attempt stops heartbeating and is retried after the heartbeat timeout (10 s), not at its five-minute limit;
    every id is then sent once."""
    fake = FakeHungSlice(datetime.now(timezone.utc))
    async with Worker(
        temporal_client,
        task_queue=settings.task_queue,
        workflows=ALL_WORKFLOWS,
        activities=fake.activities(),
        workflow_runner=WORKFLOW_RUNNER,
        deployment_config=deployment_config(settings),
    ):
        await make_current_and_wait(
            temporal_client, deployment_version(settings), settings.task_queue, "test-hung-slice"
        )
        handle = await temporal_client.start_workflow(
            DeliverPagesWorkflow.run, fake.rest(), id=f"pages/{settings.task_queue}", task_queue=settings.task_queue
        )
        await asyncio.wait_for(handle.result(), timeout=60)
    assert fake.attempts == [1, 2]
    sent = [q for b in fake.batches for q in b.queue_ids]
    wanted = [d.queue_id for k in range(1, SLICES) for d in fake.slices[k] if d.frequency == Frequency.IMMEDIATE]
    assert sorted(sent) == sorted(wanted)  # each once: the dead attempt sent nothing, the retry all of slice 2
