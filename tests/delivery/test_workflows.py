"""The delivery workflows alone, with fake activities (as in temporalio/samples-python): fast and exact.

No database or SMTP: the fakes record what the workflow asked for, so these tests
pin the workflow's own decisions — waves after quiet hours, batch sizes, the
mark-failed path, the outcome attribute — on the time-skipping server.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.implements import implements
from notiflow.contracts import Channel, NotificationType
from notiflow.runs import Audience, DeliveryOutcome, NotificationRequest
from notiflow.search import DELIVERY_OUTCOME
from tests.time_skipping import run_on_fake
from workflows.delivery import interface
from workflows.delivery.notify import NotifyWorkflow
from workflows.delivery.types import (
    BatchResult,
    Delivery,
    DeliveryBatch,
    DeliveryPlan,
    DigestRouting,
    MarkFailed,
    RetrySpec,
)


class FakeDelivery:
    """Plans what the test says; records each deliver batch (and when); fails the rows the test names."""

    def __init__(self, plan: DeliveryPlan, failing: set[str] | None = None):
        self.plan = plan
        self.failing = failing or set()
        self.batches: list[tuple[datetime, DeliveryBatch]] = []
        self.marked: list[MarkFailed] = []

    @implements(interface.plan_deliveries)
    async def plan_deliveries(self, request: NotificationRequest) -> DeliveryPlan:
        return self.plan

    @implements(interface.deliver)
    async def deliver(self, batch: DeliveryBatch) -> BatchResult:
        self.batches.append((activity.info().current_attempt_scheduled_time, batch))
        if self.failing & set(batch.queue_ids):
            raise ApplicationError("550 mailbox unavailable", type="PermanentDeliveryError", non_retryable=True)
        return BatchResult(sent=len(batch.queue_ids))

    @implements(interface.mark_failed)
    async def mark_failed(self, request: MarkFailed) -> BatchResult:
        self.marked.append(request)
        return BatchResult(failed=len(request.queue_ids))

    @implements(interface.route_to_digest)
    async def route_to_digest(self, routing: DigestRouting) -> int:
        return len(routing.items)

    def activities(self) -> list:
        return [self.plan_deliveries, self.deliver, self.mark_failed, self.route_to_digest]


def _plan(deliveries: list[Delivery], batch_size: int = 2) -> DeliveryPlan:
    return DeliveryPlan(
        deliveries=deliveries,
        batch_size=batch_size,
        retry=RetrySpec(maximum_attempts=3, initial_seconds=0.1, max_seconds=1, deadline_seconds=60),
    )


def _request() -> NotificationRequest:
    return NotificationRequest(
        source_id=f"test-{uuid.uuid4().hex[:8]}",
        notification_type=NotificationType.ISSUE_CREATED,
        audience=Audience(admins=True),
    )


async def _run(env, fake: FakeDelivery) -> tuple[DeliveryOutcome, str]:
    handle, outcome = await run_on_fake(env, fake, NotifyWorkflow.run, _request(), "notify")
    description = await handle.describe()
    return outcome, description.typed_search_attributes.get(DELIVERY_OUTCOME)


async def test_waves_wait_out_quiet_hours_and_split_into_batches(time_env):
    now = await time_env.get_current_time()
    later = now + timedelta(hours=7)
    deliveries = [Delivery(queue_id=f"now-{i}", channel=Channel.EMAIL) for i in range(3)] + [
        Delivery(queue_id="quiet-1", channel=Channel.EMAIL, not_before=later),
        Delivery(queue_id="inbox-1", channel=Channel.IN_APP),
    ]
    fake = FakeDelivery(_plan(deliveries, batch_size=2))
    outcome, verdict = await _run(time_env, fake)

    sent_now = [b for at, b in fake.batches if at < later]
    assert sorted(len(b.queue_ids) for b in sent_now) == [1, 1, 2]  # EMAIL in batches of 2, IN_APP alone
    ((at, quiet),) = [(at, b) for at, b in fake.batches if at >= later]
    assert quiet.queue_ids == ["quiet-1"] and at - later < timedelta(minutes=1)  # a durable sleep, not a poll
    assert all(b.give_up_at is not None for _, b in fake.batches)
    assert outcome.channels["EMAIL"].sent == 4 and outcome.channels["IN_APP"].sent == 1
    assert verdict == "SENT"


async def test_a_batch_that_fails_permanently_is_marked_failed_and_the_run_says_so(time_env):
    deliveries = [Delivery(queue_id="ok", channel=Channel.IN_APP), Delivery(queue_id="bad", channel=Channel.EMAIL)]
    fake = FakeDelivery(_plan(deliveries), failing={"bad"})
    outcome, verdict = await _run(time_env, fake)

    ((mark),) = fake.marked
    assert mark.queue_ids == ["bad"] and "550 mailbox unavailable" in mark.reason
    assert len([b for _, b in fake.batches if b.queue_ids == ["bad"]]) == 1  # non-retryable: one attempt
    assert outcome.channels["EMAIL"].failed == 1 and outcome.channels["IN_APP"].sent == 1
    assert verdict == "PARTIAL" and outcome.describe() == "PARTIAL · EMAIL 1 failed · IN_APP 1 sent"


async def test_digested_deliveries_go_to_the_digest_not_to_deliver(time_env):
    from notiflow.contracts import Frequency

    deliveries = [
        Delivery(queue_id="d-1", channel=Channel.EMAIL, frequency=Frequency.DAILY),
        Delivery(queue_id="n-1", channel=Channel.EMAIL),
    ]
    fake = FakeDelivery(_plan(deliveries))
    outcome, verdict = await _run(time_env, fake)
    assert [b.queue_ids for _, b in fake.batches] == [["n-1"]]
    assert outcome.channels["EMAIL"].digested == 1 and verdict == "SENT"
