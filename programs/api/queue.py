"""Admin view of deliveries (the notification queue with each row's stored decision and every attempt) and test sends."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from activities.delivery.rows import Outcome
from notiflow.audit import record_audit
from notiflow.contracts import Channel, DeliveryStatus, NotificationType
from notiflow.models import NotificationLogRow, NotificationQueueRow, NotificationTemplateRow
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import AppSettings, Session, State, directory_user, notification_client
from programs.api.engagement_queries import engagement_by_row
from programs.api.errors import VALIDATION_ERRORS
from programs.api.pagination import PageParams, fetch_page
from programs.api.schemas import CursorPage, EngagementItem, Instant, QueueItem, SendTestRequest, WorkflowStarted

router = APIRouter(prefix="/api/v1/notifications", tags=["deliveries"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})

Queue = NotificationQueueRow


@router.get(
    "/queue",
    response_model=CursorPage[QueueItem],
    summary="Deliveries, newest first, with their decisions and attempts",
)
async def list_queue(
    _admin: Admin,
    session: Session,
    settings: AppSettings,
    page: PageParams,
    status: DeliveryStatus | None = None,
    notification_type: NotificationType | None = None,
    channel: Channel | None = None,
    recipient_id: Annotated[str | None, Query(max_length=64)] = None,
    issue_id: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[Instant | None, Query(description="inclusive, e.g. 2026-11-25T00:00:00Z")] = None,
    created_to: Annotated[Instant | None, Query(description="exclusive")] = None,
    outcome: Annotated[Outcome | None, Query(description="the decision stored on the row")] = None,
) -> CursorPage[QueueItem]:
    filters = (
        (Queue.status, status),
        (Queue.notification_type, notification_type),
        (Queue.delivery_method, channel),
        (Queue.recipient_id, recipient_id),
        (Queue.issue_id, issue_id),
    )
    query = select(Queue).where(*(column == value for column, value in filters if value is not None))
    if created_from:
        query = query.where(Queue.created_at >= created_from)
    if created_to:
        query = query.where(Queue.created_at < created_to)
    if outcome:
        query = query.where(Queue.decision["outcome"].astext == str(outcome))
    rows, next_cursor = await fetch_page(session, query, Queue, page)

    attempts: dict[uuid.UUID, list[NotificationLogRow]] = defaultdict(list)
    if rows:
        logs = await session.scalars(
            select(NotificationLogRow)
            .where(NotificationLogRow.queue_id.in_([row.id for row in rows]))
            .order_by(NotificationLogRow.created_at, NotificationLogRow.attempt)
        )
        for log in logs:
            if log.queue_id is not None:
                attempts[log.queue_id].append(log)
    items = [QueueItem.of(row, attempts[row.id], settings) for row in rows]
    engagement = await engagement_by_row(session, [row.id for row in rows])  # one query per page
    for item in items:
        item.engagement = [EngagementItem.model_validate(e) for e in engagement.get(item.id, [])]
    return CursorPage[QueueItem](items=items, next_cursor=next_cursor)


@router.post(
    "/send-test",
    status_code=202,
    response_model=WorkflowStarted,
    summary="Send one sample notification to one person through the real pipeline",
)
async def send_test(body: SendTestRequest, admin: Admin, session: Session, state: State) -> WorkflowStarted:
    notification_type, channel = body.notification_type, body.channel or Channel.EMAIL
    if body.template_name is not None:
        template = await session.scalar(
            select(NotificationTemplateRow).where(
                NotificationTemplateRow.name == body.template_name, NotificationTemplateRow.is_active
            )
        )
        if template is None:
            raise HTTPException(
                404, f"no active template named {body.template_name!r}; GET /api/v1/notifications/templates lists them"
            )
        if template.notification_type not in NotificationType.__members__:
            raise HTTPException(422, f"{template.name} is not sent on its own; test a notification type instead")
        if body.channel is not None and body.channel != template.template_type:
            raise HTTPException(422, f"template {template.name} is for {template.template_type}, not {body.channel}")
        notification_type, channel = NotificationType(template.notification_type), Channel(template.template_type)
    await directory_user(session, body.recipient_id)
    notifier = await notification_client(state)
    workflow_id = await notifier.send_test(
        notification_type=str(notification_type),
        recipient_id=body.recipient_id,
        channel=str(channel),
        requested_by=admin.user_id,
    )
    await record_audit(
        session,
        actor=admin.user_id,
        action="send_test",
        target=workflow_id,
        details={
            "notification_type": str(notification_type),
            "channel": str(channel),
            "recipient_id": body.recipient_id,
            "template_name": body.template_name,
        },
    )
    await session.commit()
    return WorkflowStarted.of(state.settings, workflow_id)
