"""Delivery analytics for admins: what was sent, how reliably, how fast, and what was decided (stored per row)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.delivery.rows import UNRECORDED_OUTCOME
from notiflow.contracts import DeliveryStatus
from notiflow.models import NotificationQueueRow
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import ChannelRates, DeliveryAnalytics, DeliveryCount, Instant

router = APIRouter(prefix="/api/v1/notifications", tags=["deliveries"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})

Queue = NotificationQueueRow
DEFAULT_WINDOW = timedelta(days=7)


async def _median_seconds_to_send(session: AsyncSession, window) -> dict[str | None, float]:
    """Per channel, and overall under the key None (GROUP BY ROLLUP)."""
    seconds = extract("epoch", Queue.sent_at - Queue.created_at)
    rows = await session.execute(
        select(Queue.delivery_method, func.percentile_cont(0.5).within_group(seconds))
        .where(window, Queue.status == DeliveryStatus.SENT, Queue.sent_at.is_not(None))
        .group_by(func.rollup(Queue.delivery_method))
    )
    return {channel: float(median) for channel, median in rows if median is not None}


@router.get("/analytics", response_model=DeliveryAnalytics, summary="Delivery counts, success rate, time to send")
async def delivery_analytics(
    _admin: Admin,
    session: Session,
    created_from: Annotated[Instant | None, Query(description="inclusive; default: created_to - 7 days")] = None,
    created_to: Annotated[Instant | None, Query(description="exclusive; default: now")] = None,
) -> DeliveryAnalytics:
    created_to = created_to or datetime.now(timezone.utc)
    try:
        created_from = created_from or created_to - DEFAULT_WINDOW
    except OverflowError:
        raise HTTPException(422, "created_to is too early; give created_from as well") from None
    if created_from >= created_to:
        raise HTTPException(422, "created_from must be before created_to")
    window = (Queue.created_at >= created_from) & (Queue.created_at < created_to)

    grouping = (Queue.notification_type, Queue.delivery_method, Queue.status)
    rows = await session.execute(select(*grouping, func.count()).where(window).group_by(*grouping).order_by(*grouping))
    counts = [DeliveryCount(notification_type=t, channel=c, status=s, count=n) for t, c, s, n in rows]
    medians = await _median_seconds_to_send(session, window)
    outcome = func.coalesce(Queue.decision["outcome"].astext, UNRECORDED_OUTCOME)
    by_outcome = await session.execute(select(outcome, func.count()).where(window).group_by(outcome))
    decisions: dict[str, int] = {decided: n for decided, n in by_outcome}

    def rates(channel: str | None) -> dict:
        mine = [c for c in counts if channel is None or c.channel == channel]
        sent = sum(c.count for c in mine if c.status == DeliveryStatus.SENT)
        failed = sum(c.count for c in mine if c.status == DeliveryStatus.FAILED)
        return {
            "sent": sent,
            "failed": failed,
            "success_rate": sent / (sent + failed) if sent + failed else None,
            "median_seconds_to_send": medians.get(channel),
        }

    return DeliveryAnalytics(
        created_from=created_from,
        created_to=created_to,
        total=sum(c.count for c in counts),
        by_channel=[ChannelRates(channel=channel, **rates(channel)) for channel in sorted({c.channel for c in counts})],
        counts=counts,
        decisions=decisions,
        **rates(None),
    )
