"""Critical fallback across channels: a critical notification that ended FAILED goes out on the next channel.

The order is ``NOTIFLOW_CRITICAL_FALLBACK`` (default ``EMAIL,SMS,IN_APP``). From the failed row's channel the
next one is taken where the person has an address (a phone on file is enough for SMS: no opt-in is needed)
and where the same notification has no row yet. A channel on which it was already sent (or is on its way)
means the person is told there: nothing more is queued. A channel on which it failed too is passed over.

Both rows say so: the failed one ``context_data.fallback_to`` = ``{"channel", "queue_id"}``, its decision
FELL_BACK (the planned one kept as ``previous``) and a ``FALLBACK`` entry among its attempts; the new one
``context_data.fallback_of`` = the failed row's id and ``fallback_from`` its channel, its decision SEND with
``fallback_of``. The new row's dedupe key is the one a planned row on that channel would have, so planning it again
(an activity retry, a redelivery) finds it instead of queueing a second one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from activities.delivery import queries
from activities.delivery.planning import channel_address, issue_context_from_event, template_context
from activities.delivery.rows import Outcome, QueueRow, RowDecision, dedupe_key, log_entry, superseding
from notiflow.contracts import Channel, DeliveryStatus, IssueEvent, NotificationType
from notiflow.engagement import save_tracked_links, wrap_links
from notiflow.models import IssueEventRow, NotificationQueueRow, UserRow, table
from notiflow.runs import NotificationRequest
from notiflow.settings import Settings
from notiflow.templates.render import TemplateSource
from notiflow.templates.store import render_for
from workflows.delivery.types import Delivery, FallbackPlan

Queue = NotificationQueueRow


def next_channels(failed: str, order: tuple[str, ...]) -> list[Channel]:
    """The channels after ``failed`` in the fallback order (all of them if it is not in the order)."""
    later = order[order.index(failed) + 1 :] if failed in order else order
    return [Channel(c) for c in later if c != failed]


async def plan_fallbacks(
    session: AsyncSession,
    queue_ids: list[str],
    request: NotificationRequest | None,
    templates: dict[str, TemplateSource],
    settings: Settings,
    now: datetime,
) -> FallbackPlan:
    """Queue the fallback row of each critical FAILED row in ``queue_ids`` (one transaction, the caller's)."""
    plan = FallbackPlan()
    order = settings.critical_fallback_channels
    if not order or not queue_ids:
        return plan
    failed = list(
        (
            await session.execute(
                select(Queue)
                .where(Queue.id.in_([uuid.UUID(q) for q in queue_ids]), Queue.status == DeliveryStatus.FAILED)
                .order_by(Queue.created_at, Queue.id)
                .with_for_update()
            )
        ).scalars()
    )
    failed = [row for row in failed if (row.context_data or {}).get("critical")]
    users = await queries.users_by_id(session, [r.recipient_id for r in failed if r.recipient_id])
    routes: Counter[str] = Counter()
    issues: dict[str | None, dict[str, Any] | None] = {}
    for row in failed:
        context = row.context_data or {}
        if context.get("fallback_to"):  # planned before (a retried activity, a redelivered row): send it if pending
            target = await session.get(Queue, uuid.UUID(context["fallback_to"]["queue_id"]))
            if target is not None and target.status == DeliveryStatus.PENDING:
                plan.deliveries.append(Delivery(queue_id=str(target.id), channel=Channel(target.delivery_method)))
            continue
        user = users.get(row.recipient_id or "")
        if user is None or not user.is_active:
            continue
        for channel in next_channels(row.delivery_method, order):
            address = channel_address(user, channel)
            if not address:
                continue
            key = dedupe_key(context.get("source_id") or str(row.id), user.id, channel, row.notification_type)
            other = await session.scalar(select(Queue).where(Queue.dedupe_key == key))
            if other is not None:
                if other.status in (DeliveryStatus.SENT, DeliveryStatus.PENDING):
                    break  # told there already
                continue  # failed (or was skipped) there too
            told = request if request is not None else await rebuilt_request(session, row)
            if row.issue_id not in issues:
                issues[row.issue_id] = await _issue(session, row, told)
            fields = await asyncio.to_thread(
                _render, row, user, channel, told, issues[row.issue_id], templates, settings
            )
            if fields is None:
                continue
            new = QueueRow(
                source_id=context.get("source_id") or str(row.id),
                notification_type=row.notification_type,
                delivery_method=str(channel),
                recipient_id=user.id,
                address=address,
                template_name=fields["template_name"],
                decision=RowDecision(
                    outcome=Outcome.SEND,
                    reason=f"critical: failed on {row.delivery_method}, sent instead by {channel}",
                    at=now,
                    fallback_of=str(row.id),
                ),
                context_data={
                    "critical": True,
                    "run_id": context.get("run_id"),
                    "link": context.get("link"),
                    "recipient_name": user.name,
                    "unsubscribe_url": None,
                    "fallback_of": str(row.id),
                    "fallback_from": row.delivery_method,
                    **({"fallback": context["fallback"]} if context.get("fallback") else {}),
                },
                max_retries=row.max_retries,
                scheduled_at=now,
                workflow_id=row.workflow_id,
                event_id=row.event_id,
                issue_id=row.issue_id,
                subject=fields.get("subject"),
                content=fields.get("content", ""),
                html_content=fields.get("html_content"),
            )
            new_id = new.id
            tracked = wrap_links([new], settings)  # its links through /r/{code}, as planned rows
            await session.execute(insert(table(Queue)).values(new.values()))
            await save_tracked_links(session, tracked)
            fallback_to = {"channel": str(channel), "queue_id": str(new_id)}
            fell_back = RowDecision(
                outcome=Outcome.FELL_BACK,
                reason=f"critical, failed on {row.delivery_method}: sent instead by {channel} (queue row {new_id})",
                at=now,
                fallback_to=fallback_to,
            )
            await session.execute(
                update(Queue)
                .where(Queue.id == row.id)
                .values(
                    decision=superseding(Queue.decision, fell_back),
                    context_data=func.coalesce(Queue.context_data, cast({}, JSONB)).op("||")(
                        bindparam("fallback_to", {"fallback_to": fallback_to}, type_=JSONB)
                    ),
                )
            )
            await queries.write_logs(
                session,
                [log_entry(row.id, row, "FALLBACK", error=fell_back.reason, fallback_to=str(new_id))],
            )
            plan.deliveries.append(Delivery(queue_id=str(new_id), channel=channel))
            routes[f"{row.delivery_method}→{channel}"] += 1
            break
    plan.routes = dict(routes)
    return plan


async def _issue(
    session: AsyncSession, row: NotificationQueueRow, request: NotificationRequest
) -> dict[str, Any] | None:
    """The issue as the original was rendered with: the run's event, else the stored snapshot."""
    if request.event is not None and request.event.issue.id == row.issue_id:
        return issue_context_from_event(request.event)
    return await queries.issue_context_from_db(session, row.issue_id) if row.issue_id else None


async def rebuilt_request(session: AsyncSession, row: NotificationQueueRow) -> NotificationRequest:
    """Without the run's request (a redelivery), the event the row came from, else its type and issue."""
    context = row.context_data or {}
    if row.event_id:
        payload = await session.scalar(select(IssueEventRow.payload).where(IssueEventRow.event_id == row.event_id))
        if payload is not None:
            return NotificationRequest(
                source_id=context.get("source_id") or row.event_id,
                event=IssueEvent.model_validate(payload),
                workflow_id=row.workflow_id,
            )
    return NotificationRequest(
        source_id=context.get("source_id") or str(row.id),
        notification_type=NotificationType(row.notification_type),
        issue_id=row.issue_id,
        workflow_id=row.workflow_id,
    )


def _render(
    row: NotificationQueueRow,
    user: UserRow,
    channel: Channel,
    request: NotificationRequest,
    issue: dict[str, Any] | None,
    templates: dict[str, TemplateSource],
    settings: Settings,
) -> dict | None:
    """The fallback's template in the person's locale, rendered as the original was; None if it cannot be."""
    notification_type = NotificationType(row.notification_type)
    context = template_context(request, notification_type, user, issue, None, settings)
    outcome = render_for(templates, notification_type, channel, user.locale, context)
    return None if outcome.failure else outcome.row_fields()
