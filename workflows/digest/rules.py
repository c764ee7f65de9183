"""When a digest goes out: the person's next hour (or their digest hour), past their quiet hours.

Pure functions. Nothing here reads a clock; callers pass ``now`` (the activity's ``as_of``).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from notiflow.contracts import Frequency
from workflows.delivery.rules import quiet_until

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
