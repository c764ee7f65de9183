"""The delivery feature's activities: plan (record, route, decide, render, queue), deliver, mark failed.

Idempotency lives in the database: one queue row per (source, type, recipient,
channel); deliver sends only rows still PENDING and stores every provider answer
before it completes (``AnswerRecorder``), so a retried batch skips what was sent.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.bounces.queries import suppress_invalid, suppressed
from activities.bounces.suppression import applies, describe
from activities.delivery import fallback, queries, unread
from activities.delivery.in_app import deliver_in_app
from activities.delivery.planning import (
    NO_ON_CALL,
    NOBODY,
    PlanningContext,
    ResolvedAudience,
    SharedContext,
    add_counts,
    channel_address,
    empty_plan,
    issue_context_from_event,
    queue_rows,
    subscription_rows,
)
from activities.delivery.providers import make_providers
from activities.delivery.providers.base import OutgoingMessage, PermanentDeliveryError, Provider, TransientDeliveryError
from activities.delivery.recording import AnswerRecorder, heartbeating
from activities.delivery.rows import QueueRow
from activities.delivery.unread import merge_watches
from activities.experiments.queries import running_experiments
from activities.implements import implements
from activities.snapshot import Snapshot
from notiflow.contracts import Channel, DeliveryStatus, NotificationType
from notiflow.engagement import save_tracked_links, wrap_links
from notiflow.models import NotificationQueueRow
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
)

log = logging.getLogger(__name__)


class DeliveryActivities:
    """Activities sharing the worker's database pool and provider connections."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self.sessions = sessions
        self.settings = settings
        self.providers: dict[Channel, Provider] = make_providers(settings, sessions)
        #: per provider, shared by all its batches: sent-but-unrecorded messages in this worker stay ≤ its concurrency
        self.windows = {channel: asyncio.Semaphore(p.concurrency) for channel, p in self.providers.items()}
        self.templates = Snapshot(load_active_templates)
        self.subscriptions = Snapshot(queries.active_subscriptions)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()

    @implements(interface.plan_deliveries)
    async def plan_deliveries(self, request: NotificationRequest) -> DeliveryPlan:
        """Record the event, resolve recipients, decide and render per recipient × channel, queue the rows.

        The audience is planned in slices of ``NOTIFLOW_DELIVERY_PAGE_SIZE`` people, in one transaction: each
        slice loads its people, renders and inserts its rows, and is let go, so an audience of 100,000 holds
        one slice of rendered rows in memory and keeps every statement under PostgreSQL's 32,767 parameters.
        The plan returns at most a page of deliveries; a larger one carries a cursor (``next_page``) instead.
        """
        now = request.as_of or datetime.now(timezone.utc)
        page_size = self.settings.delivery_page_size
        async with self.sessions.begin() as session:
            if request.event is not None:
                await queries.record_event(session, request.event, request.workflow_id)
            audience = await self._audience(session, request)
            shared = SharedContext(
                templates=await self.templates.get(session), experiments=await running_experiments(session)
            )
            plan = empty_plan(self.settings)
            plan.fallback = audience.fallback
            deliveries: list[Delivery] = []
            total = 0
            people = list(audience.recipients.items())
            for start in range(0, len(people), page_size):
                if start:
                    activity.heartbeat(f"{start} of {len(people)} recipients planned")
                context = await self._context(session, dict(people[start : start + page_size]), audience, shared, now)
                rows, part = await asyncio.to_thread(queue_rows, request, context, self.settings, now)
                add_counts(plan, part)
                plan.unread_watches = merge_watches(
                    plan.unread_watches, await unread.watches_for(session, request, rows)
                )
                slice_deliveries = await self._queue(session, rows)
                total += len(slice_deliveries)
                plan.already_done += sum(1 for d in slice_deliveries if d is None)
                deliveries += [d for d in slice_deliveries if d is not None][: page_size + 1 - len(deliveries)]
            if request.only_recipients is None:  # an escalation on unread is for people, not subscriptions
                subscribed = subscription_rows(
                    request, audience.issue, await self.subscriptions.get(session), self.settings, now
                )
                queued = await self._queue(session, subscribed)
                plan.already_done += sum(1 for d in queued if d is None)
                deliveries += [d for d in queued if d is not None][: page_size + 1 - len(deliveries)]
            if len(deliveries) > page_size:
                # Every row is stored (the durable record); the run gets the first page and reads on from there.
                first = await queries.pending_page(session, request.source_id, page_size)
                plan.deliveries, plan.next_page = first.deliveries, first.next
                plan.total = await queries.pending_count(session, request.source_id)
            else:
                plan.deliveries = deliveries
        return plan

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

            async def one(row: NotificationQueueRow) -> None:
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

    async def _suppress_invalid(self, row: NotificationQueueRow, answer: str) -> None:
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
        return [self.plan_deliveries, self.next_deliveries, self.deliver, self.mark_failed, self.plan_fallbacks]


def _attempt_is_final(batch: DeliveryBatch, attempt: int) -> bool:
    """A transient failure in this attempt ends the row FAILED: enough attempts, and past the deadline if any."""
    if attempt < batch.maximum_attempts:
        return False
    return batch.give_up_at is None or datetime.now(timezone.utc) >= batch.give_up_at


def _note_critical(row: NotificationQueueRow, critical_failed: list[str]) -> None:
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


def _outgoing(row: NotificationQueueRow) -> OutgoingMessage:
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
