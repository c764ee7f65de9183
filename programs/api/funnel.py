"""GET /notifications/analytics/engagement: the engagement funnel per type × channel and day (the console's
Analytics page), sent → delivered → seen → read → clicked, bounce and complaint rates, median time to read.
The SQL is in ``funnel_queries``."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from notiflow.contracts import Channel, NotificationType
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.funnel_queries import FunnelCounts, funnel_counts
from programs.api.schemas import Instant

router = APIRouter(prefix="/api/v1/notifications", tags=["deliveries"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})

DEFAULT_WINDOW = timedelta(days=14)


class FunnelStep(BaseModel):
    day: date | None = Field(description="UTC day the rows were created; null in `totals` (the whole period)")
    notification_type: str
    channel: str
    sent: int = Field(description="rows that went out or failed trying (SENT or FAILED)")
    delivered: int = Field(description="rows SENT")
    seen: int
    opened: int = Field(description="rows opened by a person (machine opens left out)")
    read: int
    clicked: int
    bounced: int
    complained: int
    bounce_rate: float | None = Field(description="bounced / delivered; null when nothing was delivered")
    complaint_rate: float | None = Field(description="complained / delivered; null when nothing was delivered")
    median_seconds_to_read: float | None = Field(description="median of sent_at → first READ; null without reads")


class EngagementFunnel(BaseModel):
    created_from: datetime
    created_to: datetime
    days: list[FunnelStep] = Field(description="per UTC day × type × channel with rows (days without rows left out)")
    totals: list[FunnelStep] = Field(description="per type × channel over the whole period")


def _step(counts: FunnelCounts) -> FunnelStep:
    def rate(n: int) -> float | None:
        return n / counts.delivered if counts.delivered else None

    return FunnelStep(**vars(counts), bounce_rate=rate(counts.bounced), complaint_rate=rate(counts.complained))


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", field), "msg": message, "type": "value_error"}])


@router.get(
    "/analytics/engagement",
    response_model=EngagementFunnel,
    summary="Engagement funnel per type × channel and day: sent → delivered → seen → read → clicked",
)
async def engagement_funnel(
    _admin: Admin,
    session: Session,
    created_from: Annotated[
        Instant | None, Query(alias="from", description="inclusive (rows created at or after); default: to - 14 days")
    ] = None,
    created_to: Annotated[Instant | None, Query(alias="to", description="exclusive; default: now")] = None,
    notification_type: Annotated[NotificationType | None, Query(alias="type")] = None,
    channel: Annotated[Channel | None, Query()] = None,
) -> EngagementFunnel:
    created_to = created_to or datetime.now(timezone.utc)
    if created_from is None:
        try:
            created_from = created_to - DEFAULT_WINDOW
        except OverflowError:
            raise _invalid("to", "too early for the default 14 days; give from as well") from None
    if created_from >= created_to:
        raise _invalid("from", "must be before to")
    counts = await funnel_counts(
        session,
        created_from,
        created_to,
        str(notification_type) if notification_type else None,
        str(channel) if channel else None,
    )
    return EngagementFunnel(
        created_from=created_from,
        created_to=created_to,
        days=[_step(c) for c in counts if c.day is not None],
        totals=[_step(c) for c in counts if c.day is None],
    )
