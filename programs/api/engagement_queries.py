"""SQL of the engagement routes and of the operator's views (queue, Why (not)?, /metrics)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.engagement import OPEN_PIXEL
from notiflow.models import EngagementEventRow, InAppNotificationRow, NotificationQueueRow, TrackedLinkRow

Events = EngagementEventRow


async def link_for(session: AsyncSession, code: str, *, pixel: bool = False) -> TrackedLinkRow | None:
    """The stored link of a code (a redirect's code never answers as a pixel, nor a pixel's as a redirect)."""
    row = await session.get(TrackedLinkRow, code)
    if row is None or (row.link == OPEN_PIXEL) != pixel:
        return None
    return row


async def sent_at(session: AsyncSession, queue_id: uuid.UUID) -> datetime | None:
    return await session.scalar(select(NotificationQueueRow.sent_at).where(NotificationQueueRow.id == queue_id))


async def own_inbox_rows(session: AsyncSession, user_id: str, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The queue ids behind those of ``ids`` that are in the person's own inbox (anyone else's are left out)."""
    if not ids:
        return []
    rows = await session.scalars(
        select(InAppNotificationRow.queue_id).where(
            InAppNotificationRow.id.in_(ids),
            InAppNotificationRow.user_id == user_id,
            InAppNotificationRow.queue_id.is_not(None),
        )
    )
    return [r for r in rows if r is not None]


async def engagement_by_row(session: AsyncSession, queue_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Events]]:
    """Every engagement event of these rows, in one query (a page of the queue, an issue's rows)."""
    found: dict[uuid.UUID, list[Events]] = defaultdict(list)
    if queue_ids:
        for event in await session.scalars(
            select(Events).where(Events.queue_id.in_(queue_ids)).order_by(Events.occurred_at, Events.id)
        ):
            found[event.queue_id].append(event)
    return found


async def counts_by_kind_and_channel(session: AsyncSession) -> list[tuple[str, str, bool, int]]:
    """(kind, channel, machine, events) over the table; machine opens counted apart, so rates can leave them out."""
    machine = func.coalesce(Events.detail["machine"].as_boolean(), False).label("machine")
    return [
        (kind, channel, bool(is_machine), int(count))
        for kind, channel, is_machine, count in (
            await session.execute(
                select(Events.kind, Events.channel, machine, func.count()).group_by(
                    Events.kind, Events.channel, machine
                )
            )
        ).all()
    ]
