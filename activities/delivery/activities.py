"""The delivery feature's activities: plan (record, route, decide, render, queue), deliver, mark failed.

Idempotency lives in the database: one queue row per (source, type, recipient,
channel); deliver sends only rows still PENDING and stores every provider answer
before it completes (``AnswerRecorder``), so a retried batch skips what was sent.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from datetime import datetime, timedelta, timezone
from operator import itemgetter
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.bounces.queries import suppress_invalid, suppressed
from activities.bounces.suppression import applies, describe
from activities.delivery import fallback, queries, unread
from activities.delivery.in_app import deliver_in_app
from activities.delivery.planner import Planner
from activities.delivery.planning import (
    NO_ON_CALL,
    NOBODY,
    PlanningContext,
    ResolvedAudience,
    SharedContext,
    channel_address,
    issue_context_from_event,
    subscription_rows,
)
from activities.delivery.providers import make_providers
from activities.delivery.providers.base import OutgoingMessage, PermanentDeliveryError, Provider, TransientDeliveryError
from activities.delivery.recording import AnswerRecorder, heartbeating
from activities.delivery.rows import QueueRow
from activities.experiments.queries import running_experiments
from activities.implements import implements
from activities.snapshot import Snapshot
from notiflow.contracts import Channel, DeliveryStatus, NotificationType
from notiflow.engagement import save_tracked_links, wrap_links
from notiflow.runs import NotificationRequest
from notiflow.settings import Settings
from notiflow.templates.store import load_active_templates
from workflows.delivery import interface
from workflows.delivery.rules import derived_types, resolve_recipients
from workflows.delivery.types import (
    BatchResult,
    Delivery,
    DeliveryBatch,
    DeliveryPage,
    DeliveryPlan,
    FallbackPlan,
    FallbackRequest,
    MarkFailed,
    PageCursor,
    PlanSlice,
)

log = logging.getLogger(__name__)
#: How many large plans' audiences a worker keeps for their later slices (each ~10 MB at 100,000 people).
AUDIENCES_KEPT = 2


class DeliveryActivities:
    """Activities sharing the worker's database pool and provider connections."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self.sessions = sessions
        self.settings = settings
        self.providers: dict[Channel, Provider] = make_providers(settings, sessions)
        #: per provider, shared by all its batches: sent-but-unrecorded messages in this worker stay ≤ its concurrency
        self.windows = {channel: asyncio.Semaphore(p.concurrency) for channel, p in self.providers.items()}
        self.planner = Planner(settings)
        self.templates = Snapshot(load_active_templates)
        self.subscriptions = Snapshot(queries.active_subscriptions)
        #: (source id, narrowed to) → a large plan's audience in id order, for its later slices (``_audience_in_order``)
        self.audiences: dict[tuple[str, int], tuple[ResolvedAudience, list[tuple[str, NotificationType]]]] = {}

    async def close(self) -> None:
        self.planner.close()
        for provider in self.providers.values():
            await provider.close()

    @implements(interface.plan_deliveries)
    async def plan_deliveries(self, request: NotificationRequest) -> DeliveryPlan:
        """Record the event, resolve recipients, decide and render per recipient × channel, queue the rows.

        An audience of more than ``NOTIFLOW_DELIVERY_PAGE_SIZE`` people is planned a slice at a time: this plans
        the event, the first slice and the subscriptions, in one transaction, and returns where the later slices
        are (``next_page``), which ``DeliverPagesWorkflow`` plans (``plan_slice``) while this one is sent. So the
        first mail waits for one slice rather than the whole audience, a slice's rendered rows are all the memory
        planning holds, no payload carries more than a slice of ids, and every statement stays under PostgreSQL's
        32,767 parameters.
        """
        now = request.as_of or datetime.now(timezone.utc)
        async with heartbeating(lambda: "planning"), self.sessions.begin() as session:
            if request.event is not None:
                await queries.record_event(session, request.event, request.workflow_id)
            plan, issue = await self._plan_slice(session, request, None, now)
            if request.only_recipients is None:  # an escalation on unread is for people, not subscriptions
                subscribed = subscription_rows(
                    request, issue, await self.subscriptions.get(session), self.settings, now
                )
                queued = await self._queue(session, subscribed)
                plan.already_done += sum(1 for d in queued if d is None)
                plan.deliveries += [
                    d for d in queued if d is not None and not (plan.next_page and d.waits_out_quiet_hours)
                ]
        return plan

    @implements(interface.plan_slice)
    async def plan_slice(self, planning: PlanSlice) -> DeliveryPlan:
        """The next slice of a large audience, in a transaction of its own (see ``plan_deliveries``).

        Planning a slice again (a retried attempt, a run continued as new) renders it again and finds its rows:
        those still PENDING come back as deliveries, none is queued twice. It heartbeats in the background, so
        an attempt whose worker was killed is retried within seconds, not at its time limit.
        """
        request, cursor = planning.request, planning.cursor
        async with heartbeating(lambda: f"slice {cursor.part}"), self.sessions.begin() as session:
            plan, _ = await self._plan_slice(session, request, cursor, request.as_of or datetime.now(timezone.utc))
        return plan

    async def _plan_slice(
        self, session: AsyncSession, request: NotificationRequest, cursor: PageCursor | None, now: datetime
    ) -> tuple[DeliveryPlan, dict[str, Any] | None]:
        """One slice of the audience decided, rendered and queued; and the issue they heard of.

        The first slice (no cursor) is the first ``NOTIFLOW_DELIVERY_PAGE_SIZE`` people by id; for a larger
        audience it also finds where every later slice ends (``next_page``: a few ids, not the people), so the
        workflow can plan several slices at once. A later slice is the people after ``planned_after`` up to
        ``planned_through``, by the audience in id order (``_audience_in_order``): someone who joined meanwhile
        falls in a slice not yet planned or is left out, nobody is planned twice. A slice of a larger plan returns
        the rows to send now; the rows waiting out quiet hours are read, in the order they may go, once every
        slice is planned and sent (``held_only``).
        """
        page_size = self.settings.delivery_page_size
        audience, people = await self._audience_in_order(session, request, cursor)
        if cursor is None:
            start, end = 0, min(page_size, len(people))
        else:
            start = bisect.bisect_right(people, cursor.planned_after or "", key=itemgetter(0))
            through = cursor.planned_through
            end = len(people) if through is None else bisect.bisect_right(people, through, key=itemgetter(0))
        shared = SharedContext(
            templates=await self.templates.get(session), experiments=await running_experiments(session)
        )
        context = await self._context(session, dict(people[start:end]), audience, shared, now)
        rows, plan = await self.planner.queue_rows(request, context, now)
        if cursor is not None or end < len(people):  # a large audience: its next slices in the planning process
            self.planner.start()
        part = cursor.part if cursor is not None else 0
        plan.unread_watches = [
            watch.model_copy(update={"part": part}) for watch in await unread.watches_for(session, request, rows)
        ]
        queued = await self._queue(session, rows)
        plan.already_done = sum(1 for d in queued if d is None)
        deliveries = [d for d in queued if d is not None]
        if cursor is None and end < len(people):
            ends = [people[i][0] for i in range(end - 1, len(people) - 1, page_size)]
            plan.next_page = PageCursor(
                source_id=request.source_id,
                page_size=page_size,
                after_id="",
                planned_after=ends[0],
                planned_through=ends[1] if len(ends) > 1 else None,
                slice_ends=ends[2:],
                part=1,
            )
        if cursor is None and plan.next_page is None or cursor is not None and cursor.planned_through is None:
            self.audiences.pop(_audience_key(request), None)  # the last slice
        sliced = cursor is not None or plan.next_page is not None
        plan.deliveries = [d for d in deliveries if not d.waits_out_quiet_hours] if sliced else deliveries
        return plan, audience.issue

    async def _queue(self, session: AsyncSession, rows: list[QueueRow]) -> list[Delivery | None]:
        """Insert planned rows with their tracked links (NOTIFLOW_TRACK_CLICKS); see ``insert_queue_rows``."""
        tracked = wrap_links(rows, self.settings)  # every link through /r/{code}
        queued = await queries.insert_queue_rows(session, rows)
        await save_tracked_links(session, tracked)
        return queued

    @implements(interface.next_deliveries)
    async def next_deliveries(self, cursor: PageCursor) -> DeliveryPage:
        """The next page of a paged plan's PENDING rows."""
        async with self.sessions() as session:
            return await queries.pending_page(session, cursor.source_id, cursor.page_size, cursor)

    async def _audience_in_order(
        self, session: AsyncSession, request: NotificationRequest, cursor: PageCursor | None
    ) -> tuple[ResolvedAudience, list[tuple[str, NotificationType]]]:
        """The audience and its people in id order: resolved for a plan's first slice, and kept for the slices
        after it that this worker plans (while the plan is one of the last ``AUDIENCES_KEPT`` planned here).

        Resolving 100,000 admins costs about half a second of the worker's CPU: once per slice, that was a fifth
        of the whole plan's. A slice planned on another worker, or after a restart, resolves it again (the
        people after the cursor then are those of now).
        """
        kept = self.audiences.get(_audience_key(request)) if cursor is not None else None
        if kept is None:
            audience = await self._audience(session, request)
            kept = (audience, sorted(audience.recipients.items()))
            self.audiences[_audience_key(request)] = kept
            while len(self.audiences) > AUDIENCES_KEPT:
                self.audiences.pop(next(iter(self.audiences)))
        return kept

    async def _audience(self, session: AsyncSession, request: NotificationRequest) -> ResolvedAudience:
        """Who hears (one type each), the issue they hear about, and a critical notification's wider audience.

        A critical notification never goes to nobody: with no admin on call it goes to
        every admin, and the plan says so (recorded on its rows and in the run).
        """
        fallback = None
        issue: dict[str, Any] | None
        if request.event is not None:
            event = request.event
            directory = await queries.directory_for(session, event)
            recipients = resolve_recipients(event, directory)
            if not directory.on_call_admins and NotificationType.AUTO_ISSUE_DETECTED in derived_types(event):
                fallback = NO_ON_CALL if directory.admins else NOBODY
            issue = issue_context_from_event(event)
        else:
            assert request.notification_type and request.audience is not None
            wanted = request.audience
            user_ids = list(wanted.user_ids)
            if wanted.admins or wanted.on_call:
                on_call_only = wanted.on_call and not wanted.admins
                admins = await queries.admin_ids(session, on_call_only=on_call_only)
                if on_call_only and not admins:
                    admins = await queries.admin_ids(session, on_call_only=False)
                    fallback = NO_ON_CALL if admins else NOBODY
                user_ids += admins
            recipients = {uid: request.notification_type for uid in dict.fromkeys(user_ids)}
            issue = await queries.issue_context_from_db(session, request.issue_id) if request.issue_id else None
            if request.issue_id and issue is None:
                # An escalation or alarm can start while the issue's own event is still being planned (a
                # year-old issue is overdue on arrival): wait for its snapshot rather than render without it.
                raise ApplicationError(
                    f"issue {request.issue_id} is not recorded yet; retrying until its event is",
                    type="IssueNotRecorded",
                )
        if request.only_recipients is not None:
            only = set(request.only_recipients)
            recipients = {uid: kind for uid, kind in recipients.items() if uid in only}
        return ResolvedAudience(recipients=recipients, issue=issue, fallback=fallback)

    async def _context(
        self,
        session: AsyncSession,
        recipients: dict[str, NotificationType],
        audience: ResolvedAudience,
        shared: SharedContext,
        now: datetime,
    ) -> PlanningContext:
        """What the rules need about one slice of the audience: the people, their preferences, suppressions, counts."""
        users = await queries.users_by_id(session, list(recipients))
        suppressions = await suppressed(
            session,
            [(c, a) for u in users.values() for c in (Channel.EMAIL, Channel.SMS) if (a := channel_address(u, c))],
        )
        return PlanningContext(
            recipients=recipients,
            users=users,
            preferences=await queries.preferences_for(session, list(users), {str(t) for t in recipients.values()}),
            templates=shared.templates,
            issue=audience.issue,
            sent_this_hour=await queries.recent_immediate_counts(session, list(users), now),
            fallback=audience.fallback,
            suppressions=suppressions,
            experiments=shared.experiments,
        )

    @implements(interface.deliver)
    async def deliver(self, batch: DeliveryBatch) -> BatchResult:
        """Send a batch of queue rows over one channel; only rows still PENDING are sent."""
        if batch.channel == Channel.IN_APP:
            async with self.sessions.begin() as session:
                delivered = await deliver_in_app(session, batch.queue_ids, activity.info().attempt)
            if activity.info().attempt == 1 and delivered == len(batch.queue_ids):
                return BatchResult(sent=delivered)
            return await self._tally(batch.queue_ids)
        provider = self.providers.get(batch.channel)
        if provider is None:
            raise ApplicationError(
                f"channel {batch.channel} has no provider", type="PermanentDeliveryError", non_retryable=True
            )
        return await self._deliver_through(provider, batch)

    async def _deliver_through(self, provider: Provider, batch: DeliveryBatch) -> BatchResult:
        """Send the batch's PENDING rows; every answer is stored before the activity completes.

        A transient failure leaves the row PENDING (its attempt logged) and fails the
        activity so Temporal retries the rest later; once the batch's deadline has passed
        (and at least ``maximum_attempts`` were made) it is final and the row FAILED.
        """
        info = activity.info()
        async with self.sessions() as session:
            rows = await queries.pending_rows(session, batch.queue_ids)
            # listed since the row was planned (held for quiet hours, retried through an outage): not sent either
            listed = await suppressed(session, [(r.delivery_method, r.address) for r in rows if r.address])
        transient: list[str] = []
        wait_at_least: list[float] = []  # what providers asked for (Retry-After) before the next attempt
        critical_failed: list[str] = []
        final = _attempt_is_final(batch, info.attempt)
        # A critical row gives up sooner, so that it can fall back to another channel (plan_fallbacks).
        critical_final = final or _attempt_is_final(
            batch.model_copy(update={"give_up_at": info.scheduled_time + self.settings.critical_delivery_deadline}),
            info.attempt,
        )
        async with AnswerRecorder(self.sessions, info.attempt, window=self.windows[batch.channel]) as answers:

            async def one(row: Row[Any]) -> None:
                async with answers.window:
                    entry = listed.get((row.delivery_method, row.address or ""))
                    if entry is not None and applies(entry, critical=bool((row.context_data or {}).get("critical"))):
                        if (row.context_data or {}).get("critical"):  # FAILED: it falls back to the next channel
                            await answers.record(row.id, DeliveryStatus.FAILED, error=describe(entry))
                            _note_critical(row, critical_failed)
                        else:
                            await answers.record(row.id, DeliveryStatus.CANCELLED, error=describe(entry))
                        return
                    try:
                        receipt = await provider.send(_outgoing(row), sent_at=datetime.now(timezone.utc))
                    except PermanentDeliveryError as exc:
                        await answers.record(row.id, DeliveryStatus.FAILED, error=str(exc))
                        _note_critical(row, critical_failed)
                        if exc.invalid_address:
                            await self._suppress_invalid(row, str(exc))
                    except TransientDeliveryError as exc:
                        if critical_final if (row.context_data or {}).get("critical") else final:
                            await answers.record(
                                row.id, DeliveryStatus.FAILED, error=f"gave up after {info.attempt} attempts: {exc}"
                            )
                            _note_critical(row, critical_failed)
                        else:
                            await answers.record(row.id, None, error=str(exc))
                            transient.append(str(exc))
                            if exc.retry_after:
                                wait_at_least.append(exc.retry_after)
                    else:
                        await answers.record(
                            row.id,
                            DeliveryStatus.SENT,
                            message_id=receipt.provider_message_id,
                            response=receipt.response,
                            provider=receipt.provider,
                        )

            async with heartbeating(lambda: len(answers.statuses)):
                await asyncio.gather(*(one(row) for row in rows))
        if transient:
            raise ApplicationError(
                f"{len(transient)} of {len(rows)} {batch.channel} deliveries will be retried: {transient[0]}",
                type="TransientDeliveryError",
                next_retry_delay=_next_retry_delay(info, max(wait_at_least, default=0)),
            )
        if info.attempt == 1 and len(rows) == len(batch.queue_ids):
            return BatchResult(
                sent=answers.count(DeliveryStatus.SENT),
                failed=answers.count(DeliveryStatus.FAILED),
                critical_failed=critical_failed,
            )
        return await self._tally(batch.queue_ids)

    async def _suppress_invalid(self, row: Row[Any], answer: str) -> None:
        """The receiver said the address does not exist: list it (INVALID), so planning stops sending there."""
        if not row.address:
            return
        try:
            async with self.sessions.begin() as session:
                await suppress_invalid(
                    session, channel=row.delivery_method, address=row.address, queue_id=row.id, text=answer
                )
        except Exception:  # the answer itself is stored; a lost list entry is re-made by the next refusal
            log.warning("could not add %s %s to the suppression list", row.delivery_method, row.id, exc_info=True)

    @implements(interface.plan_fallbacks)
    async def plan_fallbacks(self, request: FallbackRequest) -> FallbackPlan:
        """Critical rows that ended FAILED: queue each on the person's next channel (NOTIFLOW_CRITICAL_FALLBACK)."""
        async with self.sessions.begin() as session:
            templates = await self.templates.get(session)
            return await fallback.plan_fallbacks(
                session, request.queue_ids, request.request, templates, self.settings, datetime.now(timezone.utc)
            )

    @implements(interface.mark_failed)
    async def mark_failed(self, request: MarkFailed) -> BatchResult:
        """After the last attempt: rows still PENDING become FAILED with the reason."""
        async with self.sessions.begin() as session:
            await queries.fail_pending(session, request.queue_ids, request.reason)
        return await self._tally(request.queue_ids)

    async def _tally(self, queue_ids: list[str]) -> BatchResult:
        async with self.sessions() as session:
            return await queries.tally(session, queue_ids)

    def activities(self) -> list:
        return [
            self.plan_deliveries,
            self.plan_slice,
            self.next_deliveries,
            self.deliver,
            self.mark_failed,
            self.plan_fallbacks,
        ]


def _audience_key(request: NotificationRequest) -> tuple[str, int]:
    """A plan's audience: its source, and the people it is narrowed to (escalations of one source differ by them)."""
    only = request.only_recipients
    return request.source_id, hash(tuple(only)) if only is not None else 0


def _attempt_is_final(batch: DeliveryBatch, attempt: int) -> bool:
    """A transient failure in this attempt ends the row FAILED: enough attempts, and past the deadline if any."""
    if attempt < batch.maximum_attempts:
        return False
    return batch.give_up_at is None or datetime.now(timezone.utc) >= batch.give_up_at


def _note_critical(row: Row[Any], critical_failed: list[str]) -> None:
    """A critical row that ends FAILED may fall back to another channel (``plan_fallbacks``)."""
    if (row.context_data or {}).get("critical"):
        critical_failed.append(str(row.id))


def _next_retry_delay(info: activity.Info, at_least: float) -> timedelta | None:
    """The batch's next attempt: the retry policy's backoff, or later if a provider asked (HTTP Retry-After).

    ``None`` leaves the policy alone. A provider's wish only ever lengthens the wait.
    """
    if at_least <= 0:
        return None
    policy = info.retry_policy
    backoff = 0.0
    if policy is not None:
        backoff = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (info.attempt - 1)
        if policy.maximum_interval:
            backoff = min(backoff, policy.maximum_interval.total_seconds())
    return timedelta(seconds=max(backoff, at_least))


def _outgoing(row: Row[Any]) -> OutgoingMessage:
    context = row.context_data or {}
    return OutgoingMessage(
        queue_id=str(row.id),
        address=row.address or "",
        recipient_name=context.get("recipient_name"),
        subject=row.subject or "",
        text=row.content,
        html=row.html_content,
        issue_id=row.issue_id,
        link=context.get("tracked_link") or context.get("link"),
        unsubscribe_url=context.get("unsubscribe_url"),
        notification_type=row.notification_type,
        critical=bool(context.get("critical")),
    )
