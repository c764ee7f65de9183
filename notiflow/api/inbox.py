"""The signed-in person's in-app inbox, and its live stream (Server-Sent Events)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from notiflow.api.auth import CurrentUser, SIGNED_IN_ERRORS, StreamUser
from notiflow.api.deps import Session, State
from notiflow.api.errors import VALIDATION_ERRORS
from notiflow.api.pagination import PageParams, fetch_page
from notiflow.api.schemas import InboxItem, InboxPage, ReadAllResult, UnreadCount
from notiflow.models import InAppNotificationRow

router = APIRouter(
    prefix="/api/v1/notifications/inbox", tags=["inbox"], responses={**SIGNED_IN_ERRORS, **VALIDATION_ERRORS}
)

Inbox = InAppNotificationRow
#: Comment lines that keep proxies from closing an idle stream (read per request, so tests may shorten it).
KEEPALIVE_SECONDS = 15.0


def _unread(user_id: str) -> ColumnElement[bool]:
    return (Inbox.user_id == user_id) & Inbox.read_at.is_(None) & Inbox.archived_at.is_(None)


async def _unread_count(session: AsyncSession, user_id: str) -> int:
    return await session.scalar(select(func.count()).select_from(Inbox).where(_unread(user_id)))


async def _change(session: AsyncSession, user_id: str, notification_id: uuid.UUID, **values) -> InboxItem:
    """Apply ``values`` to one of the person's own notifications; someone else's is a 404."""
    row = await session.scalar(
        update(Inbox).where(Inbox.id == notification_id, Inbox.user_id == user_id).values(**values).returning(Inbox)
    )
    if row is None:
        raise HTTPException(404, f"notification {notification_id} is not in your inbox")
    await session.commit()
    return InboxItem.model_validate(row)


@router.get("", response_model=InboxPage, summary="My notifications, newest first")
async def list_inbox(
    principal: CurrentUser,
    session: Session,
    page: PageParams,
    include_archived: Annotated[bool, Query(description="also list archived notifications")] = False,
) -> InboxPage:
    query = select(Inbox).where(Inbox.user_id == principal.user_id)
    if not include_archived:
        query = query.where(Inbox.archived_at.is_(None))
    rows, next_cursor = await fetch_page(session, query, Inbox, page)
    return InboxPage(
        items=[InboxItem.model_validate(row) for row in rows],
        next_cursor=next_cursor,
        unread_count=await _unread_count(session, principal.user_id),
    )


@router.get("/unread-count", response_model=UnreadCount, summary="How many unread (for the bell icon)")
async def unread_count(principal: CurrentUser, session: Session) -> UnreadCount:
    return UnreadCount(unread_count=await _unread_count(session, principal.user_id))


@router.post("/read-all", response_model=ReadAllResult, summary="Mark everything read")
async def read_all(principal: CurrentUser, session: Session) -> ReadAllResult:
    result = await session.execute(
        update(Inbox).where(_unread(principal.user_id)).values(read_at=func.now())
    )
    await session.commit()
    return ReadAllResult(marked_read=result.rowcount, unread_count=0)


@router.post("/{notification_id}/read", response_model=InboxItem, summary="Mark read")
async def mark_read(notification_id: uuid.UUID, principal: CurrentUser, session: Session) -> InboxItem:
    return await _change(session, principal.user_id, notification_id, read_at=func.coalesce(Inbox.read_at, func.now()))


@router.post("/{notification_id}/unread", response_model=InboxItem, summary="Mark unread")
async def mark_unread(notification_id: uuid.UUID, principal: CurrentUser, session: Session) -> InboxItem:
    return await _change(session, principal.user_id, notification_id, read_at=None)


@router.post("/{notification_id}/archive", response_model=InboxItem, summary="Archive (hide from the inbox)")
async def archive(notification_id: uuid.UUID, principal: CurrentUser, session: Session) -> InboxItem:
    return await _change(
        session, principal.user_id, notification_id, archived_at=func.coalesce(Inbox.archived_at, func.now())
    )


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    summary="Live inbox (Server-Sent Events)",
    description="On connect: an `unread_count` event. Then one `notification` event (data: an inbox item) per "
    "new in-app notification, within a second of delivery. Browsers' EventSource cannot set headers: "
    "pass the token as `?access_token=`.",
)
async def stream_inbox(principal: StreamUser, state: State) -> EventSourceResponse:
    async def events() -> AsyncIterator[ServerSentEvent]:
        async with state.inbox.subscribe(principal.user_id) as arrivals:
            async with state.sessions() as session:
                unread = await _unread_count(session, principal.user_id)
            yield ServerSentEvent(event="unread_count", data=UnreadCount(unread_count=unread).model_dump_json())
            while True:
                notification_id = await arrivals.get()
                async with state.sessions() as session:
                    row = await session.get(Inbox, notification_id)
                if row is not None and row.user_id == principal.user_id:
                    item = InboxItem.model_validate(row)
                    yield ServerSentEvent(event="notification", id=str(item.id), data=item.model_dump_json())

    return EventSourceResponse(events(), ping=KEEPALIVE_SECONDS)
