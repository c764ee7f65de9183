"""The activities the delivery workflows call: each one's name and types, no body.

Workflows call these typed references (``workflow.execute_activity(plan_deliveries, …)``), so a
reader — and mypy — follows a call to its input and result without opening the worker; the bodies
live in ``activities/`` (delivery, digest, sla), which register them with ``@implements(…)``: the
same name, and a signature checked against this one when the worker imports them. This module
imports no SQLAlchemy, SMTP or Jinja2, so the sandbox loads it cheaply for every run.
"""

from __future__ import annotations

from temporalio import activity

from notiflow.contracts import IssueEvent
from notiflow.runs import NotificationRequest, RedeliveryRequest
from workflows.delivery.types import (
    BatchResult,
    DeliveryBatch,
    DeliveryPage,
    DeliveryPlan,
    DigestRouting,
    FallbackPlan,
    FallbackRequest,
    MarkFailed,
    PageCursor,
    PlanSlice,
    Requeued,
    Unread,
    UnreadWatch,
)


@activity.defn
async def plan_deliveries(request: NotificationRequest) -> DeliveryPlan:
    """Record the event, resolve recipients, decide and render: one queue row per recipient × channel."""
    ...


@activity.defn
async def plan_slice(planning: PlanSlice) -> DeliveryPlan:
    """A later slice of a large audience (the people after ``planned_after`` up to ``planned_through``), queued."""
    ...


@activity.defn
async def next_deliveries(cursor: PageCursor) -> DeliveryPage:
    """The next page of a paged plan's PENDING rows (at most ``cursor.page_size``), and where the one after starts."""
    ...


@activity.defn
async def deliver(batch: DeliveryBatch) -> BatchResult:
    """Send one channel's batch of PENDING rows, storing every provider answer before completing."""
    ...


@activity.defn
async def mark_failed(failure: MarkFailed) -> BatchResult:
    """Rows whose deliver activity gave up (its backstop timed out) become FAILED with the reason."""
    ...


@activity.defn
async def plan_fallbacks(request: FallbackRequest) -> FallbackPlan:
    """Critical rows that ended FAILED, queued on each person's next channel."""
    ...


@activity.defn
async def requeue_failed(request: RedeliveryRequest) -> Requeued:
    """An operator's choice of FAILED rows back to PENDING (same ids), as a plan to deliver."""
    ...


@activity.defn
async def route_to_digest(routing: DigestRouting) -> int:
    """Hand digest rows to their recipients' DigestWorkflow (implemented by the digest feature)."""
    ...


@activity.defn
async def feed_timers(event: IssueEvent) -> None:
    """Signal the issue's SLA run and, for auto-reported issues, the spike detector (the sla feature)."""
    ...


@activity.defn
async def find_unread(watch: UnreadWatch) -> Unread:
    """At the read deadline: which of the watched people neither read nor clicked any row of the notification."""
    ...


@activity.defn
async def start_unread_watches(watches: list[UnreadWatch]) -> int:
    """Start each watch's read deadline (``UnreadEscalationWorkflow``, once per id); how many were new."""
    ...
