"""Inputs of DigestWorkflow and when a digest goes out (the person's hour, past quiet hours).

Pure data and pure functions, cheap to import: the workflow loads this module through
the sandbox's passthrough, activities use it directly. Nothing here reads a clock;
callers pass ``now`` (the workflow's clock or the activity's ``as_of``).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from notiflow.contracts import Frequency
from notiflow.runs import DeliveryOutcome
from workflows.delivery.rules import quiet_until
from workflows.delivery.types import DeliveryPlan


class DigestItem(BaseModel):
    queue_id: str
    frequency: Frequency
    #: When the digest that carries it goes out (recipient's zone, past their quiet hours).
    flush_at: datetime


class DigestAdditions(BaseModel):
    items: list[DigestItem]


class DigestInput(BaseModel):
    user_id: str
    #: Items carried over continue-as-new (not yet due at the last flush).
    pending: list[DigestItem] = Field(default_factory=list)


class DigestFlush(BaseModel):
    user_id: str
    #: Unique per user and flush; names the digest rows (dedupe) and the items' provider_response.
    digest_id: str
    period: Frequency
    queue_ids: list[str]


class DigestComposition(BaseModel):
    """The digest rows composed for one flush (one per channel) and what is left to deliver of them."""

    digest_ids: list[str]
    plan: DeliveryPlan


class DigestSettle(BaseModel):
    digest_ids: list[str]


class DigestResult(BaseModel):
    items: int
    outcome: DeliveryOutcome


DEFAULT_DIGEST_HOUR = 8


def next_digest_at(
    frequency: Frequency,
    now: datetime,
    tz_name: str,
    *,
    digest_hour: int | None = None,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
) -> datetime:
    """The next local top of the hour (HOURLY) or ``digest_hour``:00 (DAILY) after ``now``, past quiet hours."""
    zone = ZoneInfo(tz_name)
    local = now.astimezone(zone)
    if frequency == Frequency.DAILY:
        hour = DEFAULT_DIGEST_HOUR if digest_hour is None else digest_hour
        candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
        if candidate <= local:
            candidate = (local + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
        at = candidate.astimezone(timezone.utc)
    else:
        at = local.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc) + timedelta(hours=1)
    return quiet_until(at, tz_name, quiet_start, quiet_end) or at
