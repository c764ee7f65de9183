"""Delivery analytics as time series (the console's charts): per day, volume by type × channel, success
rate, p50/p95 time to send, digest and rate-cap diversions (as the decision stored on each row says, never
re-derived from today's preferences); and the top failure reasons of the window."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import Date, and_, cast, extract, func, literal, or_, select

from activities.delivery.rows import Outcome as Decided
from notiflow.contracts import DeliveryStatus
from notiflow.models import NotificationLogRow, NotificationQueueRow
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import Instant

router = APIRouter(prefix="/api/v1/notifications", tags=["deliveries"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})

Queue = NotificationQueueRow
#: Failure reasons are grouped on their first characters (addresses and ids vary at the end).
REASON_PREFIX = 120


class DayVolume(BaseModel):
    day: date
    notification_type: str
    channel: str
    count: int


class DayRates(BaseModel):
    day: date
    sent: int
    failed: int
    success_rate: float | None = Field(description="sent / (sent + failed); null when nothing finished")
    p50_seconds_to_send: float | None
    p95_seconds_to_send: float | None
    digested: int = Field(
        description="put in an hourly or daily digest because the person chose one (the decision stored on the row; "
        "rows stored before decisions were count here)"
    )
    rate_capped: int = Field(description="moved to the hourly digest by the per-hour cap, as decided at the time")


class FailureReason(BaseModel):
    reason: str
    count: int


class AnalyticsSeries(BaseModel):
    created_from: datetime
    created_to: datetime
    volume: list[DayVolume]
    days: list[DayRates]
    top_failure_reasons: list[FailureReason] = Field(description="failed attempts by reason (most first, 10 at most)")


@router.get("/analytics/series", response_model=AnalyticsSeries, summary="Delivery analytics per day (UTC), for charts")
async def analytics_series(
    _admin: Admin,
    session: Session,
    days: Annotated[int, Query(ge=1, le=90, description="how many days, ending at created_to")] = 14,
    created_to: Annotated[Instant | None, Query(description="exclusive; default: now")] = None,
) -> AnalyticsSeries:
    created_to = created_to or datetime.now(timezone.utc)
    try:
        created_from = created_to - timedelta(days=days)
    except OverflowError:
        raise HTTPException(422, "created_to is too early for that many days") from None
    window = (Queue.created_at >= created_from) & (Queue.created_at < created_to)
    day = cast(func.timezone("UTC", Queue.created_at), Date).label("day")

    volume_rows = await session.execute(
        select(day, Queue.notification_type, Queue.delivery_method, func.count())
        .where(window)
        .group_by(day, Queue.notification_type, Queue.delivery_method)
        .order_by(day, Queue.notification_type, Queue.delivery_method)
    )
    volume = [DayVolume(day=d, notification_type=t, channel=c, count=n) for d, t, c, n in volume_rows]

    seconds = extract("epoch", Queue.sent_at - Queue.created_at)
    sent_now = and_(
        Queue.status == DeliveryStatus.SENT, Queue.sent_at.is_not(None), Queue.context_data["digest"].astext.is_(None)
    )
    outcome = Queue.decision["outcome"].astext
    unrecorded_digest = outcome.is_(None) & Queue.context_data["digest"].astext.is_not(None)
    rate_rows = await session.execute(
        select(
            day,
            func.count().filter(Queue.status == DeliveryStatus.SENT),
            func.count().filter(Queue.status == DeliveryStatus.FAILED),
            func.percentile_cont(0.5).within_group(seconds).filter(sent_now),
            func.percentile_cont(0.95).within_group(seconds).filter(sent_now),
            func.count().filter(or_(outcome == literal(str(Decided.DIGESTED)), unrecorded_digest)),
            func.count().filter(outcome == literal(str(Decided.RATE_CAPPED))),
        )
        .select_from(Queue)
        .where(window)
        .group_by(day)
        .order_by(day)
    )
    by_day = {
        d: DayRates(
            day=d,
            sent=s,
            failed=f,
            success_rate=s / (s + f) if s + f else None,
            p50_seconds_to_send=p50,
            p95_seconds_to_send=p95,
            digested=dg,
            rate_capped=rc,
        )
        for d, s, f, p50, p95, dg, rc in rate_rows
    }
    first = created_from.astimezone(timezone.utc).date()
    span = (created_to.astimezone(timezone.utc).date() - first).days + 1
    days_out = [
        by_day.get(d)
        or DayRates(
            day=d,
            sent=0,
            failed=0,
            success_rate=None,
            p50_seconds_to_send=None,
            p95_seconds_to_send=None,
            digested=0,
            rate_capped=0,
        )
        for d in (first + timedelta(days=i) for i in range(span))
    ]

    # Failed attempts, not rows still FAILED: a row redelivered since still failed for that reason.
    log = NotificationLogRow
    reason = func.left(func.coalesce(log.error_details, "unknown"), REASON_PREFIX)
    reasons = await session.execute(
        select(reason, func.count())
        .where(log.created_at >= created_from, log.created_at < created_to, log.status == DeliveryStatus.FAILED)
        .group_by(reason)
        .order_by(func.count().desc(), reason)
        .limit(10)
    )
    return AnalyticsSeries(
        created_from=created_from,
        created_to=created_to,
        volume=volume,
        days=days_out,
        top_failure_reasons=[FailureReason(reason=r, count=n) for r, n in reasons],
    )
