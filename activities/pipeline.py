"""The delivery pipeline's activities: plan (record, route, render, queue) and deliver.

Idempotency lives in the database: one ``notification_queue`` row per
(source, type, recipient, channel) via ``dedupe_key``; a deliver activity only
sends rows that are still PENDING and marks each SENT in the same transaction
that records the provider's answer, so a retried batch skips what was sent.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.recording import AnswerRecorder, heartbeating
from activities.providers import EmailProvider, OutgoingEmail, PermanentDeliveryError, TransientDeliveryError
from notiflow.contracts import (
    Channel,
    DeliveryStatus,
    EventType,
    Frequency,
    IssueEvent,
    NotificationType,
    User,
    UserRef,
)
from notiflow.db import INBOX_CHANNEL
from notiflow.directory import upsert_users
from notiflow.models import (
    InAppNotificationRow,
    IssueEventRow,
    IssueRow,
    NotificationLogRow,
    NotificationPreferenceRow,
    NotificationQueueRow,
    NotificationTemplateRow,
    UserRow,
)
from workflows.delivery.types import (
    BatchResult,
    Delivery,
    DeliveryBatch,
    DeliveryPlan,
    MarkFailed,
    NotificationRequest,
    RetrySpec,
)
from workflows.delivery.rules import (
    DEFAULT_CHANNELS,
    Directory,
    Preference,
    decide,
    derived_types,
    is_critical,
    quiet_until,
    resolve_recipients,
)
from notiflow.settings import Settings
from notiflow.templating import Rendered, TemplateError, TemplateSource, render, sample_context, template_name
from notiflow.unsubscribe import UnsubscribeRequest, unsubscribe_url

#: Fallbacks of a critical audience, recorded on the rows (``context_data.fallback``) and in the run's outcome.
NO_ON_CALL = "no admin on call: sent to every admin"
NOBODY = "no admin in the directory: nobody could be told"

#: Seconds a worker keeps templates and escalation policies before reading them again.
SNAPSHOT_TTL = 5.0
T = TypeVar("T")


class Snapshot(Generic[T]):
    """A small, rarely edited table, read at most every SNAPSHOT_TTL seconds (edits apply within that)."""

    def __init__(self, load: Callable[[AsyncSession], Awaitable[T]]) -> None:
        self._load = load
        self._loaded_at = float("-inf")
        self._value: T | None = None

    async def get(self, session: AsyncSession) -> T:
        if time.monotonic() - self._loaded_at > SNAPSHOT_TTL:
            self._value, self._loaded_at = await self._load(session), time.monotonic()
        return self._value


async def load_active_templates(session: AsyncSession) -> dict[str, TemplateSource]:
    rows = (await session.execute(select(NotificationTemplateRow).where(NotificationTemplateRow.is_active))).scalars()
    return {r.name: template_source(r) for r in rows}


def recipient_context(user: UserRow, settings: Settings) -> dict[str, Any]:
    """The ``recipient`` every template sees."""
    return {"id": user.id, "name": user.name, "email": user.email, "locale": user.locale,
            "timezone": user.timezone or settings.timezone}


class PipelineActivities:
    """Activities sharing the worker's database pool and SMTP connections."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self.sessions = sessions
        self.settings = settings
        self.email = EmailProvider(settings)
        self.templates = Snapshot(load_active_templates)

    async def close(self) -> None:
        await self.email.close()

    # ------------------------------------------------------------------ plan

    @activity.defn(name="plan_deliveries")
    async def plan_deliveries(self, request: NotificationRequest) -> DeliveryPlan:
        """Record the event, resolve recipients, apply preferences, render, and queue rows."""
        now = request.as_of or datetime.now(timezone.utc)
        async with self.sessions.begin() as session:
            if request.event is not None:
                await _record_event(session, request.event, request.workflow_id)
            recipients, issue, fallback = await self._recipients(session, request)
            users = await _users(session, list(recipients))
            prefs = await _preferences(session, list(users), {str(t) for t in recipients.values()})
            templates = await self.templates.get(session)
            recent = await _recent_immediate_counts(session, list(users), now)
            rows, plan = self._queue_rows(request, recipients, users, prefs, templates, issue, now, recent)
            if fallback:
                plan.fallback = fallback
                for row in rows:
                    row["context_data"]["fallback"] = fallback
            deliveries = await insert_queue_rows(session, rows)
        plan.deliveries = [d for d in deliveries if d is not None]
        plan.already_done = sum(1 for d in deliveries if d is None)
        return plan

    async def _recipients(self, session: AsyncSession, request: NotificationRequest):
        """user id → notification type, the issue as templates see it, and the fallback taken if any.

        A critical notification never goes to nobody: with no admin on call it goes to
        every admin, and the plan says so (recorded on its rows and in the run).
        """
        if request.event is not None:
            event = request.event
            directory = await _directory(session, event)
            recipients = resolve_recipients(event, directory)
            fallback = None
            if not directory.on_call_admins and NotificationType.AUTO_ISSUE_DETECTED in derived_types(event):
                fallback = NO_ON_CALL if directory.admins else NOBODY
            return recipients, _issue_context_from_event(event), fallback
        assert request.notification_type and request.audience is not None
        audience = request.audience
        user_ids = list(audience.user_ids)
        fallback = None
        if audience.admins or audience.on_call:
            on_call_only = audience.on_call and not audience.admins
            admins = await _admin_ids(session, on_call_only=on_call_only)
            if on_call_only and not admins:
                admins = await _admin_ids(session, on_call_only=False)
                fallback = NO_ON_CALL if admins else NOBODY
            user_ids += admins
        issue = await _issue_context_from_db(session, request.issue_id) if request.issue_id else None
        return {uid: request.notification_type for uid in dict.fromkeys(user_ids)}, issue, fallback

    def _queue_rows(self, request, recipients, users, prefs, templates, issue, now, recent: Counter):
        settings = self.settings
        plan = empty_plan(settings)
        rows: list[dict[str, Any]] = []
        channels = request.channels or list(DEFAULT_CHANNELS)
        priority = issue["priority"] if issue else None
        event = request.event
        for user_id, notification_type in recipients.items():
            user = users.get(user_id)
            if user is None or not user.is_active:
                for channel in channels:
                    plan.skipped[channel] = plan.skipped.get(channel, 0) + 1
                continue
            critical = is_critical(notification_type, priority, on_call=bool(request.data.get("audience") == "on_call"))
            for channel in channels:
                base = {
                    "id": uuid.uuid4(),
                    "dedupe_key": f"{request.source_id}|{notification_type}|{user_id}|{channel}",
                    "recipient_id": user_id,
                    "delivery_method": str(channel),
                    "notification_type": str(notification_type),
                    "event_id": event.event_id if event else None,
                    "issue_id": issue["id"] if issue else request.issue_id,
                    "workflow_id": request.workflow_id,
                    "max_retries": settings.notification_retry_attempts,
                    "context_data": {"source_id": request.source_id, "critical": critical, "run_id": request.run_id},
                    "scheduled_at": now,
                }
                decision = decide(prefs.get((user_id, str(notification_type), str(channel))), critical=critical)
                if request.ignore_preferences:
                    decision = decide(None, critical=True)
                address = channel_address(user, channel)
                reason = decision.reason if not decision.send else (None if address else f"no {channel.lower()} address")
                source = pick_template(templates, notification_type, channel, user.locale)
                if reason is None and source is None:
                    reason, status = f"no active template for {notification_type} on {channel}", DeliveryStatus.FAILED
                else:
                    status = DeliveryStatus.CANCELLED if reason else DeliveryStatus.PENDING
                rendered: Rendered | None = None
                unsubscribe = None
                if status == DeliveryStatus.PENDING:
                    if channel == Channel.EMAIL and not critical:
                        unsubscribe = unsubscribe_url(settings.public_api_url, settings.jwt_secret,
                                                      UnsubscribeRequest(user_id, str(notification_type), str(channel)))
                    context = self._template_context(request, notification_type, user, issue, unsubscribe)
                    rendered, reason = render_or_reason(source, context)
                    if reason:
                        status = DeliveryStatus.FAILED
                if status == DeliveryStatus.CANCELLED:
                    plan.skipped[channel] = plan.skipped.get(channel, 0) + 1
                elif status == DeliveryStatus.FAILED:
                    plan.failed[channel] = plan.failed.get(channel, 0) + 1
                quiet = None if critical else quiet_until(now, user.timezone or settings.timezone,
                                                          user.quiet_hours_start, user.quiet_hours_end)
                frequency = decision.frequency
                if (status == DeliveryStatus.PENDING and frequency == Frequency.IMMEDIATE
                        and not (critical or request.ignore_preferences)):
                    # Rate cap: past max_per_hour, the rest of the hour goes into an hourly digest.
                    if recent[(user_id, str(channel))] >= settings.max_per_hour:
                        frequency = Frequency.HOURLY
                    else:
                        recent[(user_id, str(channel))] += 1
                digest = {"digest": str(frequency)} if frequency != Frequency.IMMEDIATE else {}
                rows.append(base | {
                    "template_name": source.name if source else template_name(str(notification_type), str(channel), "en"),
                    "subject": (rendered.subject or "")[:255] if rendered else None,
                    "content": rendered.text if rendered else "",
                    "html_content": rendered.html if rendered else None,
                    "status": str(status),
                    "error_message": reason,
                    "address": address,
                    "context_data": base["context_data"] | {"unsubscribe_url": unsubscribe, "link": _link(issue, settings),
                                                            "recipient_name": user.name} | digest,
                    "_not_before": quiet,
                    "_frequency": frequency,
                })
        return rows, plan

    def _template_context(self, request, notification_type, user: UserRow, issue, unsubscribe) -> dict[str, Any]:
        event = request.event
        base = sample_context(str(notification_type)) if request.sample else {}
        if request.sample:
            issue = base["issue"]
        return base | {
            "notification_type": str(notification_type),
            "recipient": recipient_context(user, self.settings),
            "actor": _ref(event.actor) if event else base.get("actor"),
            "issue": issue,
            "changes": {k: v.model_dump(mode="json") for k, v in event.changes.items()} if event and event.changes else None,
            "comment": event.comment.model_dump(mode="json") if event and event.comment else None,
            "context": event.context if event else {},
            "app_url": self.settings.app_url,
            "issue_url": _link(issue, self.settings),
            "unsubscribe_url": unsubscribe,
            "data": base.get("data", {}) | request.data,
        }

    # --------------------------------------------------------------- deliver

    @activity.defn(name="deliver")
    async def deliver(self, batch: DeliveryBatch) -> BatchResult:
        """Send a batch of queue rows over one channel; only rows still PENDING are sent."""
        if batch.channel == Channel.IN_APP:
            return await self._deliver_in_app(batch)
        if batch.channel == Channel.EMAIL:
            return await self._deliver_external(batch, self._send_email)
        raise ApplicationError(f"channel {batch.channel} is not available", non_retryable=True)

    async def _deliver_external(self, batch: DeliveryBatch, send) -> BatchResult:
        """Send the batch's PENDING rows; every answer is stored before the activity completes.

        A transient failure leaves the row PENDING (its attempt logged) and fails the
        activity so Temporal retries the rest later; once the batch's deadline has passed
        (and at least ``maximum_attempts`` were made) it is final and the row FAILED.
        """
        info = activity.info()
        async with self.sessions() as session:
            rows = (await session.execute(
                select(NotificationQueueRow).where(
                    NotificationQueueRow.id.in_([uuid.UUID(q) for q in batch.queue_ids]),
                    NotificationQueueRow.status == DeliveryStatus.PENDING,
                )
            )).scalars().all()
        transient: list[str] = []
        final = _attempt_is_final(batch, info.attempt)
        async with AnswerRecorder(self.sessions, info.attempt, window=self.settings.smtp_pool_size) as answers:

            async def one(row: NotificationQueueRow) -> None:
                async with answers.window:
                    try:
                        receipt = await send(row)
                    except PermanentDeliveryError as exc:
                        await answers.record(row.id, DeliveryStatus.FAILED, error=str(exc))
                    except TransientDeliveryError as exc:
                        if final:
                            await answers.record(row.id, DeliveryStatus.FAILED,
                                                 error=f"gave up after {info.attempt} attempts: {exc}")
                        else:
                            await answers.record(row.id, None, error=str(exc))
                            transient.append(str(exc))
                    else:
                        await answers.record(row.id, DeliveryStatus.SENT, message_id=receipt.provider_message_id,
                                             response=receipt.response)

            async with heartbeating(lambda: len(answers.statuses)):
                await asyncio.gather(*(one(row) for row in rows))
        if transient:
            raise ApplicationError(
                f"{len(transient)} of {len(rows)} {batch.channel} deliveries will be retried: {transient[0]}",
                type="TransientDeliveryError",
            )
        if info.attempt == 1 and len(rows) == len(batch.queue_ids):
            return BatchResult(sent=answers.count(DeliveryStatus.SENT), failed=answers.count(DeliveryStatus.FAILED))
        return await self._tally(batch.queue_ids)

    async def _send_email(self, row: NotificationQueueRow):
        user_name = (row.context_data or {}).get("recipient_name")
        mail = OutgoingEmail(
            queue_id=str(row.id), to_address=row.address, to_name=user_name, subject=row.subject or "",
            text=row.content, html=row.html_content, issue_id=row.issue_id,
            unsubscribe_url=(row.context_data or {}).get("unsubscribe_url"),
        )
        return await self.email.send(mail, sent_at=datetime.now(timezone.utc))

    async def _deliver_in_app(self, batch: DeliveryBatch) -> BatchResult:
        """Inbox rows, SENT marks, logs and NOTIFYs for the whole batch in one transaction."""
        ids = [uuid.UUID(q) for q in batch.queue_ids]
        now = datetime.now(timezone.utc)
        async with self.sessions.begin() as session:
            rows = (await session.execute(
                update(NotificationQueueRow)
                .where(NotificationQueueRow.id.in_(ids), NotificationQueueRow.status == DeliveryStatus.PENDING)
                .values(status=str(DeliveryStatus.SENT), sent_at=now)
                .returning(NotificationQueueRow)
            )).scalars().all()
            if rows:
                inbox = [
                    {"id": uuid.uuid4(), "user_id": r.recipient_id, "queue_id": r.id,
                     "notification_type": r.notification_type, "issue_id": r.issue_id,
                     "title": (r.subject or "")[:300], "body": r.content,
                     "link": (r.context_data or {}).get("link")}
                    for r in rows
                ]
                await session.execute(insert(InAppNotificationRow.__table__), inbox)
                await write_logs(session, [attempt_log(r, DeliveryStatus.SENT, activity.info().attempt, now, None)
                                           for r in rows])
                await session.execute(text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"), {
                    "channel": INBOX_CHANNEL,
                    "payloads": [json.dumps({"user_id": i["user_id"], "id": str(i["id"])}) for i in inbox],
                })
        if activity.info().attempt == 1 and len(rows) == len(ids):
            return BatchResult(sent=len(rows))
        return await self._tally(batch.queue_ids)

    @activity.defn(name="mark_failed")
    async def mark_failed(self, request: MarkFailed) -> BatchResult:
        """After the last attempt: rows still PENDING become FAILED with the reason."""
        async with self.sessions.begin() as session:
            rows = (await session.execute(
                update(NotificationQueueRow)
                .where(NotificationQueueRow.id.in_([uuid.UUID(q) for q in request.queue_ids]),
                       NotificationQueueRow.status == DeliveryStatus.PENDING)
                .values(status=str(DeliveryStatus.FAILED), error_message=request.reason)
                .returning(NotificationQueueRow)
            )).scalars().all()
            await write_logs(session, [attempt_log(r, DeliveryStatus.FAILED, r.retry_count + 1, None, request.reason)
                                       for r in rows])
        return await self._tally(request.queue_ids)

    async def _tally(self, queue_ids: list[str]) -> BatchResult:
        """Final counts over a whole batch, including rows sent by earlier attempts."""
        async with self.sessions() as session:
            counts = dict((await session.execute(
                select(NotificationQueueRow.status, func.count())
                .where(NotificationQueueRow.id.in_([uuid.UUID(q) for q in queue_ids]))
                .group_by(NotificationQueueRow.status)
            )).all())
        return BatchResult(sent=counts.get(DeliveryStatus.SENT, 0), failed=counts.get(DeliveryStatus.FAILED, 0))

    @activity.defn(name="sync_users")
    async def sync_users(self, users: list[User]) -> int:
        async with self.sessions.begin() as session:
            await upsert_users(session, users)
        return len(users)

    def activities(self) -> list:
        return [self.plan_deliveries, self.deliver, self.mark_failed, self.sync_users]


# ---------------------------------------------------------------- helpers


def _attempt_is_final(batch: DeliveryBatch, attempt: int) -> bool:
    """A transient failure in this attempt ends the row FAILED: enough attempts, and past the deadline if any."""
    if attempt < batch.maximum_attempts:
        return False
    return batch.give_up_at is None or datetime.now(timezone.utc) >= batch.give_up_at


def empty_plan(settings: Settings) -> DeliveryPlan:
    """A plan with the worker's batch and retry settings, before any delivery is added."""
    return DeliveryPlan(
        batch_size=settings.notification_batch_size,
        retry=RetrySpec(maximum_attempts=settings.notification_retry_attempts,
                        initial_seconds=settings.retry_initial_seconds, max_seconds=settings.retry_max_seconds,
                        deadline_seconds=settings.delivery_deadline.total_seconds()),
    )


async def _recent_immediate_counts(session: AsyncSession, user_ids: list[str], now: datetime) -> Counter:
    """(recipient, channel) → notifications queued for immediate delivery in the hour before ``now`` (rate cap)."""
    if not user_ids:
        return Counter()
    q = NotificationQueueRow
    rows = await session.execute(
        select(q.recipient_id, q.delivery_method, func.count())
        .where(q.recipient_id.in_(user_ids), q.created_at > now - timedelta(hours=1),
               q.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENT]), q.context_data["digest"].astext.is_(None))
        .group_by(q.recipient_id, q.delivery_method)
    )
    return Counter({(user_id, channel): count for user_id, channel, count in rows})


def _ref(ref: UserRef | None) -> dict[str, Any] | None:
    return ref.model_dump(mode="json") if ref else None


def _link(issue: dict[str, Any] | None, settings: Settings) -> str | None:
    return f"{settings.app_url.rstrip('/')}/admin/issues/{issue['id']}" if issue else None


def channel_address(user: UserRow, channel: Channel) -> str | None:
    if channel == Channel.EMAIL:
        return user.email
    if channel == Channel.SMS:
        return user.phone
    return user.id


def attempt_log(row: NotificationQueueRow, status: DeliveryStatus, attempt: int, sent_at,
                error: str | None) -> dict[str, Any]:
    """One notification_logs row (values for ``write_logs``)."""
    return {
        "queue_id": row.id, "user_id": row.recipient_id, "notification_type": row.notification_type,
        "delivery_method": row.delivery_method, "status": str(status), "attempt": attempt, "sent_at": sent_at,
        "error_details": error, "context": {"workflow_id": row.workflow_id},
    }


async def write_logs(session: AsyncSession, logs: list[dict[str, Any]]) -> None:
    """Core executemany: the ORM unit of work costs more than the delivery itself at fan-out."""
    if logs:
        await session.execute(insert(NotificationLogRow.__table__), logs)


def _issue_context_from_event(event: IssueEvent) -> dict[str, Any]:
    return event.issue.model_dump(mode="json")


async def _issue_context_from_db(session: AsyncSession, issue_id: str) -> dict[str, Any] | None:
    issue = await session.get(IssueRow, issue_id)
    if issue is None:
        return None
    people = await _users(session, [i for i in (issue.reporter_id, issue.assignee_id) if i])

    def person(user_id):
        user = people.get(user_id)
        return {"id": user.id, "name": user.name, "email": user.email} if user else None

    return {
        "id": issue.id, "title": issue.title, "description": issue.description, "category": issue.category,
        "priority": issue.priority, "status": issue.status, "reporter": person(issue.reporter_id),
        "assignee": person(issue.assignee_id), "is_auto_reported": issue.is_auto_reported,
        "created_at": issue.created_at.isoformat(), "resolution_notes": issue.resolution_notes,
    }


async def _record_event(session: AsyncSession, event: IssueEvent, workflow_id: str | None) -> None:
    """Store the event (once), the people it mentions, and the issue's newest snapshot."""
    await session.execute(
        insert(IssueEventRow).values(
            event_id=event.event_id, type=str(event.type), issue_id=event.issue.id,
            actor_id=event.actor.id if event.actor else None, occurred_at=event.occurred_at,
            workflow_id=workflow_id, payload=event.model_dump(mode="json"),
        ).on_conflict_do_nothing(index_elements=["event_id"])
    )
    issue = event.issue
    people = {r.id: r for r in (event.actor, issue.reporter, issue.assignee, event.comment and event.comment.author) if r}
    for ref in people.values():
        # An event may introduce a person and fill their blanks, never overwrite the directory: one event
        # with a wrong address must not redirect someone's notifications (sync_users / PUT /users own it).
        values = {"id": ref.id, "name": ref.name, "email": ref.email, "phone": ref.phone}
        if ref.locale:
            values["locale"] = ref.locale
        statement = insert(UserRow).values(values)
        blanks = {column: func.coalesce(getattr(UserRow, column), getattr(statement.excluded, column))
                  for column in ("email", "phone") if values[column] is not None}
        if blanks:
            statement = statement.on_conflict_do_update(index_elements=["id"], set_=blanks)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=["id"])
        await session.execute(statement)
    resolved_at = event.occurred_at if event.type == EventType.ISSUE_RESOLVED else None
    snapshot = {
        "title": issue.title, "description": issue.description, "category": issue.category,
        "priority": str(issue.priority), "status": str(issue.status),
        "reporter_id": issue.reporter.id if issue.reporter else None,
        "assignee_id": issue.assignee.id if issue.assignee else None,
        "is_auto_reported": issue.is_auto_reported, "resolution_notes": issue.resolution_notes,
        "created_at": issue.created_at, "last_event_at": event.occurred_at,
    }
    statement = insert(IssueRow).values(id=issue.id, resolved_at=resolved_at, **snapshot)
    on_newer = {**snapshot, "resolved_at": func.coalesce(statement.excluded.resolved_at, IssueRow.resolved_at)}
    if event.type == EventType.ISSUE_REOPENED:
        on_newer["resolved_at"] = None
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_=on_newer, where=IssueRow.last_event_at <= statement.excluded.last_event_at
        )
    )


async def _admin_ids(session: AsyncSession, *, on_call_only: bool) -> list[str]:
    query = select(UserRow.id).where(UserRow.roles.contains(["admin"]), UserRow.is_active).order_by(UserRow.id)
    if on_call_only:
        query = query.where(UserRow.is_on_call)
    return list((await session.execute(query)).scalars())


async def _directory(session: AsyncSession, event: IssueEvent) -> Directory:
    admins = (await session.execute(
        select(UserRow.id, UserRow.is_on_call).where(UserRow.roles.contains(["admin"]), UserRow.is_active).order_by(UserRow.id)
    )).all()
    commenters: list[str] = []
    if event.type == EventType.ISSUE_COMMENT_ADDED:
        commenters = list((await session.execute(
            select(IssueEventRow.actor_id).where(
                IssueEventRow.issue_id == event.issue.id,
                IssueEventRow.type == EventType.ISSUE_COMMENT_ADDED,
                IssueEventRow.occurred_at < event.occurred_at,
                IssueEventRow.actor_id.is_not(None),
            ).distinct()
        )).scalars())
    return Directory(
        admins=tuple(a.id for a in admins),
        on_call_admins=tuple(a.id for a in admins if a.is_on_call),
        earlier_commenters=tuple(sorted(commenters)),
    )


async def _users(session: AsyncSession, user_ids: list[str]) -> dict[str, UserRow]:
    if not user_ids:
        return {}
    rows = (await session.execute(select(UserRow).where(UserRow.id.in_(user_ids)))).scalars()
    return {u.id: u for u in rows}


async def _preferences(session: AsyncSession, user_ids: list[str], types: set[str]):
    if not user_ids:
        return {}
    rows = (await session.execute(
        select(NotificationPreferenceRow).where(
            NotificationPreferenceRow.user_id.in_(user_ids), NotificationPreferenceRow.notification_type.in_(types)
        )
    )).scalars()
    return {
        (p.user_id, p.notification_type, p.delivery_method): Preference(p.is_enabled, p.frequency) for p in rows
    }


def template_source(row: NotificationTemplateRow) -> TemplateSource:
    return TemplateSource(
        name=row.name, notification_type=row.notification_type, channel=row.template_type, locale=row.locale,
        subject_template=row.subject_template, body_template=row.body_template, html_template=row.html_template,
        version=row.version,
    )


def render_or_reason(source: TemplateSource, context: dict[str, Any]) -> tuple[Rendered | None, str | None]:
    """The rendered parts, or why the template failed: a permanent failure of that one row, not the batch."""
    try:
        return render(source, context), None
    except TemplateError as exc:
        return None, f"template {source.name} v{source.version}: {exc}"


def pick_template(templates: dict[str, TemplateSource], notification_type, channel, locale: str | None):
    """The recipient's language, else English."""
    for candidate in (locale or "en", (locale or "en").split("-")[0], "en"):
        source = templates.get(template_name(str(notification_type), str(channel), candidate))
        if source is not None:
            return source
    return None


async def insert_queue_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Delivery | None]:
    """Insert new rows; for each, a Delivery if it is still to be sent, None if it was handled before.

    A row that exists FAILED from another run of the same workflow (an operator reset
    the run after an outage) is planned afresh: it takes this run's rendering and
    status, keeps its id — hence its Message-ID — and is sent again.
    """
    if not rows:
        return []
    not_before = {r["dedupe_key"]: r.pop("_not_before", None) for r in rows}
    frequency = {r["dedupe_key"]: r.pop("_frequency", Frequency.IMMEDIATE) for r in rows}
    q = NotificationQueueRow
    await session.execute(insert(q.__table__).on_conflict_do_nothing(index_elements=["dedupe_key"]), rows)
    existing = (await session.execute(
        select(q.id, q.dedupe_key, q.status, q.delivery_method, q.context_data["run_id"].astext.label("run_id"))
        .where(q.dedupe_key.in_(list(not_before)))
    )).all()
    by_key = {e.dedupe_key: e for e in existing}
    status = {key: row.status for key, row in by_key.items()}
    for planned in rows:
        row = by_key[planned["dedupe_key"]]
        run_id = (planned.get("context_data") or {}).get("run_id")
        if row.status == DeliveryStatus.FAILED and run_id and row.run_id != run_id:
            replan = {k: v for k, v in planned.items() if k not in ("id", "dedupe_key", "created_at")}
            await session.execute(update(q).where(q.id == row.id, q.status == DeliveryStatus.FAILED).values(replan))
            await write_logs(session, [{
                "queue_id": row.id, "user_id": planned["recipient_id"], "notification_type": planned["notification_type"],
                "delivery_method": planned["delivery_method"], "status": "REQUEUED", "attempt": 0, "sent_at": None,
                "error_details": f"re-planned by run {run_id} of {planned.get('workflow_id')}",
                "context": {"workflow_id": planned.get("workflow_id"), "run_id": run_id},
            }])
            status[planned["dedupe_key"]] = planned["status"]
    out: list[Delivery | None] = []
    for key in not_before:
        row = by_key[key]
        if status[key] == DeliveryStatus.PENDING:
            out.append(Delivery(queue_id=str(row.id), channel=Channel(row.delivery_method), not_before=not_before[key],
                                frequency=frequency[key]))
        elif status[key] == DeliveryStatus.SENT:
            out.append(None)
    return out
