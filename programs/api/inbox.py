"""The signed-in person's in-app inbox, and its live stream (Server-Sent Events)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query
from sqlalchemy import ColumnElement, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from notiflow.engagement import EngagementKind, record_engagement
from notiflow.models import InAppNotificationRow, InboxCountRow
from programs.api.auth import SIGNED_IN_ERRORS, CurrentUser, StreamUser
from programs.api.deps import Session, State
from programs.api.errors import VALIDATION_ERRORS
from programs.api.pagination import PageParams, decode_cursor, encode_cursor, fetch_page
from programs.api.schemas import InboxItem, InboxPage, ReadAllResult, UnreadCount

router = APIRouter(
    prefix="/api/v1/notifications/inbox", tags=["inbox"], responses={**SIGNED_IN_ERRORS, **VALIDATION_ERRORS}
)

Inbox = InAppNotificationRow
#: Comment lines that keep proxies from closing an idle stream (read per request, so tests may shorten it).
KEEPALIVE_SECONDS = 15.0


def _unread(user_id: str) -> ColumnElement[bool]:
    return (Inbox.user_id == user_id) & Inbox.read_at.is_(None) & Inbox.archived_at.is_(None)


async def _unread_count(session: AsyncSession, user_id: str) -> int:
    """The person's counter (one primary-key read; triggers keep it exact), 0 for one who never had any."""
    return (await session.scalar(select(InboxCountRow.unread).where(InboxCountRow.user_id == user_id))) or 0


async def _apply(
    session: AsyncSession, user_id: str, notification_id: uuid.UUID, kind: EngagementKind | None, **values
) -> InAppNotificationRow | None:
    """Apply ``values`` to one of the person's own notifications and record ``kind`` for it (not committed)."""
    row = await session.scalar(
        update(Inbox).where(Inbox.id == notification_id, Inbox.user_id == user_id).values(**values).returning(Inbox)
    )
    if row is not None and kind is not None and row.queue_id is not None:
        await record_engagement(session, row.queue_id, kind)
    return row


async def mark_read_row(session: AsyncSession, user_id: str, notification_id: uuid.UUID) -> InAppNotificationRow | None:
    """Mark read (recording READ), uncommitted; None if it is not the person's."""
    return await _apply(
        session, user_id, notification_id, EngagementKind.READ, read_at=func.coalesce(Inbox.read_at, func.now())
    )


async def _change(
    session: AsyncSession, user_id: str, notification_id: uuid.UUID, kind: EngagementKind | None = None, **values
) -> InboxItem:
    """Apply ``values`` to one of the person's own notifications; someone else's is a 404."""
    row = await _apply(session, user_id, notification_id, kind, **values)
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
    marked = (
        await session.execute(
            update(Inbox).where(_unread(principal.user_id)).values(read_at=func.now()).returning(Inbox.queue_id)
        )
    ).all()
    for (queue_id,) in marked:
        if queue_id is not None:
            await record_engagement(session, queue_id, EngagementKind.READ)
    await session.commit()
    return ReadAllResult(marked_read=len(marked), unread_count=0)


@router.post("/{notification_id}/read", response_model=InboxItem, summary="Mark read")
async def mark_read(notification_id: uuid.UUID, principal: CurrentUser, session: Session) -> InboxItem:
    row = await mark_read_row(session, principal.user_id, notification_id)
    if row is None:
        raise HTTPException(404, f"notification {notification_id} is not in your inbox")
    await session.commit()
    return InboxItem.model_validate(row)


@router.post("/{notification_id}/unread", response_model=InboxItem, summary="Mark unread")
async def mark_unread(notification_id: uuid.UUID, principal: CurrentUser, session: Session) -> InboxItem:
    return await _change(session, principal.user_id, notification_id, read_at=None)


@router.post("/{notification_id}/archive", response_model=InboxItem, summary="Archive (hide from the inbox)")
async def archive(notification_id: uuid.UUID, principal: CurrentUser, session: Session) -> InboxItem:
    return await _change(
        session,
        principal.user_id,
        notification_id,
        EngagementKind.ARCHIVED,
        archived_at=func.coalesce(Inbox.archived_at, func.now()),
    )


#: Browsers reconnect this soon after a dropped stream (the SSE ``retry:`` field, milliseconds).
RECONNECT_MILLISECONDS = 1000
#: At most this many missed notifications are replayed on a resume; past it the client re-reads /inbox.
RESUME_LIMIT = 500
#: The cursor of "before anything": a person with an empty inbox has missed everything that arrives.
_ORIGIN = encode_cursor(datetime(1970, 1, 1, tzinfo=timezone.utc), uuid.UUID(int=0))


def _event_id(row: InAppNotificationRow) -> str:
    """An SSE event id is the row's position in the inbox (created_at, id): what to resume after."""
    return encode_cursor(row.created_at, row.id)


def _resume_point(last_event_id: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not last_event_id:
        return None
    try:
        return decode_cursor(last_event_id)
    except HTTPException:  # not one of ours: start afresh instead of refusing the stream
        return None


async def _newest_position(session: AsyncSession, user_id: str) -> str:
    row = await session.scalar(
        select(Inbox).where(Inbox.user_id == user_id).order_by(Inbox.created_at.desc(), Inbox.id.desc()).limit(1)
    )
    return _event_id(row) if row is not None else _ORIGIN


async def _missed(session: AsyncSession, user_id: str, after: tuple[datetime, uuid.UUID]) -> list[InAppNotificationRow]:
    return list(
        (
            await session.scalars(
                select(Inbox)
                .where(
                    Inbox.user_id == user_id,
                    Inbox.archived_at.is_(None),
                    tuple_(Inbox.created_at, Inbox.id) > tuple_(*after),
                )
                .order_by(Inbox.created_at, Inbox.id)
                .limit(RESUME_LIMIT)
            )
        ).all()
    )


def _notification_event(row: InAppNotificationRow) -> ServerSentEvent:
    item = InboxItem.model_validate(row)
    return ServerSentEvent(event="notification", id=_event_id(row), data=item.model_dump_json())


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    summary="Live inbox (Server-Sent Events)",
    description="On connect: an `unread_count` event. Then one `notification` event (data: an inbox item) per "
    "new in-app notification, within a second of delivery. Every event carries an `id`; a client that reconnects "
    "with `Last-Event-ID` (EventSource does so by itself) first receives, oldest first, the notifications it "
    "missed after that id (each once), then a fresh `unread_count`. Browsers' EventSource cannot set headers: "
    "pass the token as `?access_token=` (and, for a reconnect by hand, the id as `?last_event_id=`).",
)
async def stream_inbox(
    principal: StreamUser,
    state: State,
    last_event_id: Annotated[str | None, Header(description="the id of the last event received")] = None,
    resume_after: Annotated[
        str | None, Query(alias="last_event_id", description="same as the Last-Event-ID header")
    ] = None,
) -> EventSourceResponse:
    after = _resume_point(last_event_id or resume_after)
    user_id = principal.user_id

    async def events() -> AsyncIterator[ServerSentEvent]:
        # Subscribe before reading: whatever commits meanwhile is either in the read or in `arrivals` (or both).
        async with state.inbox.subscribe(user_id) as arrivals:
            sent: set[uuid.UUID] = set()  # replayed ones, which a NOTIFY may also bring
            async with state.sessions() as session:
                missed = await _missed(session, user_id, after) if after else []
                position = None if after else await _newest_position(session, user_id)
                unread = await _unread_count(session, user_id)
            for row in missed:
                sent.add(row.id)
                yield _notification_event(row)
            count = UnreadCount(unread_count=unread).model_dump_json()
            # On a fresh connect the count's id marks "seen up to here", so a resume misses nothing even
            # when no notification arrived before the connection dropped.
            yield ServerSentEvent(event="unread_count", id=position, data=count, retry=RECONNECT_MILLISECONDS)
            while True:
                notification_id = await arrivals.get()
                if notification_id in sent:
                    continue
                async with state.sessions() as session:
                    arrived = await session.get(Inbox, notification_id)
                if arrived is not None and arrived.user_id == user_id:
                    yield _notification_event(arrived)

    return EventSourceResponse(events(), ping=KEEPALIVE_SECONDS)
