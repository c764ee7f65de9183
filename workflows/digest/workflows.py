"""DigestWorkflow (id ``digest/{user_id}``): one person's hourly and daily digests.

``route_to_digest`` signal-with-starts it with queue rows and the instant each
one's digest goes out (computed in the person's time zone, past their quiet
hours). When the earliest of those instants comes, the due items go out as one
message per channel; the run then continues as new with what is left, or ends.

Status of an item's queue row: PENDING while it waits (``scheduled_at`` says
until when, ``context_data.digest`` says HOURLY/DAILY); SENT with
``provider_response`` "in digest <digest row id>" once its digest was delivered;
FAILED with the digest's error if the digest could not be delivered. The
digest is a queue row of its own (notification type DIGEST) listing its items.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.contracts import Frequency
from workflows.delivery.pipeline import BOOKKEEPING_RETRY, deliver_plan
from workflows.digest.interface import compose_digest, settle_digest
from workflows.digest.types import (
    DigestAdditions,
    DigestFlush,
    DigestInput,
    DigestItem,
    DigestResult,
    DigestSettle,
)
from workflows.history import should_continue_as_new


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class DigestWorkflow:
    @workflow.init
    def __init__(self, start: DigestInput) -> None:
        self._user_id = start.user_id
        self._items: dict[str, DigestItem] = {item.queue_id: item for item in start.pending}
        self._changed = False

    @workflow.signal
    def add(self, additions: DigestAdditions) -> None:
        for item in additions.items:
            self._items.setdefault(item.queue_id, item)
        self._changed = True

    @workflow.query
    def pending(self) -> list[DigestItem]:
        return sorted(self._items.values(), key=lambda item: item.flush_at)

    @workflow.run
    async def run(self, start: DigestInput) -> DigestResult:
        await workflow.wait_condition(lambda: bool(self._items))
        while (flush_at := min(item.flush_at for item in self._items.values())) > workflow.now():
            workflow.set_current_details(
                f"{len(self._items)} items waiting; next digest at {flush_at:%Y-%m-%d %H:%M} UTC"
            )
            self._changed = False
            try:  # an item for an earlier digest may arrive meanwhile
                await workflow.wait_condition(
                    lambda: self._changed, timeout=flush_at - workflow.now(), timeout_summary="digest due"
                )
            except TimeoutError:
                pass
            if should_continue_as_new():  # a busy day of items for a daily digest
                workflow.continue_as_new(self._carried_over())
        due = [item for item in self._items.values() if item.flush_at <= workflow.now()]
        result = await self._flush(due)
        for item in due:
            del self._items[item.queue_id]
        if self._items:
            workflow.continue_as_new(self._carried_over())
        return result

    def _carried_over(self) -> DigestInput:
        return DigestInput(user_id=self._user_id, pending=list(self._items.values()))

    async def _flush(self, due: list[DigestItem]) -> DigestResult:
        """Compose one digest per channel, deliver it like any notification, then settle its items."""
        queue_ids = sorted(item.queue_id for item in due)
        digest_id = f"{workflow.now():%Y%m%dT%H%MZ}-{hashlib.sha256(''.join(queue_ids).encode()).hexdigest()[:8]}"
        period = Frequency.DAILY if any(item.frequency == Frequency.DAILY for item in due) else Frequency.HOURLY
        composed = await workflow.execute_activity(
            compose_digest,
            DigestFlush(user_id=self._user_id, digest_id=digest_id, period=period, queue_ids=queue_ids),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=BOOKKEEPING_RETRY,
        )
        outcome = await deliver_plan(composed.plan)
        if composed.digest_ids:
            await workflow.execute_activity(
                settle_digest,
                DigestSettle(digest_ids=composed.digest_ids),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=BOOKKEEPING_RETRY,
            )
        return DigestResult(items=len(due), outcome=outcome)


WORKFLOWS = [DigestWorkflow]
