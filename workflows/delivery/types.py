"""Inputs and outputs of the delivery activities and workflows (pydantic).

A ``NotificationRequest`` says what to tell whom: either an issue event (the
routing rules pick recipients) or an explicit type and audience (escalations,
summaries, alarms, send-test). ``plan_deliveries`` turns it into queue rows;
the deliver activities send those rows in batches.

Passed through the sandbox (``workers/main.py : DECLARATIONS``): pydantic models, no functions, nothing
that reads a clock — tests/test_sandbox.py checks it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from notiflow.contracts import Channel, Frequency, NotificationType
from notiflow.runs import DeliveryOutcome, NotificationRequest


class RetrySpec(BaseModel):
    """The worker's retry settings, recorded in history so replays agree.

    With ``deadline_seconds`` (every plan since durable retries) a transient failure is
    retried without an attempt limit until the deadline has passed *and* at least
    ``maximum_attempts`` attempts were made; without it (histories recorded before),
    ``maximum_attempts`` alone bounds the retries.
    """

    maximum_attempts: int
    initial_seconds: float
    max_seconds: float
    deadline_seconds: float | None = None


class Delivery(BaseModel):
    queue_id: str
    channel: Channel
    #: quiet hours: not before this instant (None = now).
    not_before: datetime | None = None
    #: HOURLY / DAILY: goes into the recipient's digest (preference, or over the hourly rate cap).
    frequency: Frequency = Frequency.IMMEDIATE

    @property
    def waits_out_quiet_hours(self) -> bool:
        """Sent when quiet hours end (a digest's row is handed to the digest at once, quiet hours or not)."""
        return self.frequency == Frequency.IMMEDIATE and self.not_before is not None


class UnreadWatch(BaseModel):
    """Escalation on unread: who got one notification, and where it goes for those who have not read it in time.

    Planned with the rows (the type's ``read_escalations`` rule, read once, when the notification is planned);
    the watch's run waits ``after_minutes`` on a durable timer, then asks the database who has neither read
    nor clicked any row of it.
    """

    #: the request that was planned: its source names the rows; its event renders the escalation as the original
    request: NotificationRequest
    notification_type: NotificationType
    recipient_ids: list[str]
    after_minutes: int
    channel: Channel
    #: the slice of a plan planned slice by slice that these people are in (0: the first, or a whole plan): one
    #: read deadline per slice, so no watch lists more than a slice of people
    part: int = 0

    @property
    def issue_id(self) -> str | None:
        return self.request.event.issue.id if self.request.event else self.request.issue_id


class Unread(BaseModel):
    """What ``find_unread`` found at the deadline."""

    recipient_ids: list[str] = Field(default_factory=list)
    #: the issue was resolved or closed meanwhile: nothing more is sent
    issue_closed: bool = False


class PageCursor(BaseModel):
    """Where the rest of a large plan is: its next slices to plan (``plan_slice``), or the next page of its
    PENDING rows (``next_deliveries``).

    Pages are read in the order (quiet hours' end — none first —, row id), only rows still PENDING, so a page
    never holds more than ``page_size`` deliveries and no row is read twice.
    """

    source_id: str
    page_size: int
    #: the last row read: its quiet hours' end and id (keyset, not offset: rows sent meanwhile shift nothing)
    after_not_before: datetime | None = None
    after_id: str
    #: a plan planned slice by slice (``plan_slice``): this slice is the people after this id (none in cursors
    #: recorded before, whose plans were planned whole) …
    planned_after: str | None = None
    #: … up to this id (None: to the last)
    planned_through: str | None = None
    #: the last ids of the slices after this one but the last (found when the first slice was planned), so that
    #: several slices can be planned at once
    slice_ends: list[str] = Field(default_factory=list)
    #: the slice's number (the first, planned with the event, is 0): names its unread watches' runs
    part: int = 0
    #: only rows waiting out quiet hours (sending now): read once every slice is planned and its other rows sent
    held_only: bool = False


class DeliveryPage(BaseModel):
    deliveries: list[Delivery] = Field(default_factory=list)
    #: None: this was the last page
    next: PageCursor | None = None


class DeliveryPlan(BaseModel):
    #: every delivery, or (with ``next_page``) only the first page of them
    deliveries: list[Delivery] = Field(default_factory=list)
    #: a critical notification's audience was empty and this wider one was used (recorded on the rows too)
    fallback: str | None = None
    skipped: dict[str, int] = Field(default_factory=dict)
    failed: dict[str, int] = Field(default_factory=dict)
    already_done: int = 0
    batch_size: int = 50
    retry: RetrySpec
    #: escalation on unread: one watch per notification type whose rule is on (none in plans recorded before)
    unread_watches: list[UnreadWatch] = Field(default_factory=list)
    #: rows planned in a running experiment, by "experiment name: arm" (none in plans recorded before)
    experiments: dict[str, int] = Field(default_factory=dict)
    #: a plan's first slice (an audience larger than a slice): where its later slices are, for
    #: ``DeliverPagesWorkflow``; in plans recorded before slices, the next page of PENDING rows (none in plans
    #: recorded before paging, which hold every delivery)
    next_page: PageCursor | None = None


class PlanSlice(BaseModel):
    """The next slice of a large audience to plan: the request, and where its people start (``plan_slice``)."""

    request: NotificationRequest
    cursor: PageCursor


class PagedDelivery(BaseModel):
    """What ``DeliverPagesWorkflow`` sends: the slices (or, recorded before slices, the pages) of a plan after its
    first, from ``cursor`` on; ``request`` is what every slice is planned from.

    ``plan`` carries the batch and retry settings only (its deliveries are left out); ``outcome`` is what the
    earlier runs of the chain (continued as new) have counted.
    """

    plan: DeliveryPlan
    cursor: PageCursor
    request: NotificationRequest | None = None
    outcome: DeliveryOutcome = Field(default_factory=DeliveryOutcome)
    #: a run continues as new once its history is this long (events) or 1 MB, or the server suggests it
    max_history_events: int = 5_000


class DeliveryBatch(BaseModel):
    channel: Channel
    queue_ids: list[str]
    #: the fewest attempts before a row may be given up
    maximum_attempts: int
    #: transient failures after this instant are final (None: ``maximum_attempts`` alone decides)
    give_up_at: datetime | None = None


class BatchResult(BaseModel):
    sent: int = 0
    failed: int = 0
    #: queue ids of critical rows that ended FAILED: candidates for a fallback channel (``plan_fallbacks``)
    critical_failed: list[str] = Field(default_factory=list)


class FallbackRequest(BaseModel):
    """Critical rows that ended FAILED, to queue on each person's next channel (``NOTIFLOW_CRITICAL_FALLBACK``)."""

    queue_ids: list[str]
    #: what the run was asked to tell (renders the fallback as the original was); None: rebuilt from the rows
    request: NotificationRequest | None = None


class FallbackPlan(BaseModel):
    """The fallback rows queued (PENDING, to deliver now) and the routes taken, e.g. ``{"EMAIL→SMS": 1}``."""

    deliveries: list[Delivery] = Field(default_factory=list)
    routes: dict[str, int] = Field(default_factory=dict)


class MarkFailed(BaseModel):
    queue_ids: list[str]
    reason: str


class Requeued(BaseModel):
    """What ``requeue_failed`` did: the rows now PENDING again, as a plan the delivery waves can send."""

    plan: DeliveryPlan
    requeued: int = 0


#: What the plan hands to the recipients' digests (the digest feature takes it; delivery never imports digest).
class DigestRoute(BaseModel):
    queue_id: str
    frequency: Frequency


class DigestRouting(BaseModel):
    """Queue rows the plan put into digests; ``as_of`` is the workflow's clock."""

    items: list[DigestRoute]
    as_of: datetime
