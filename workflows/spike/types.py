"""Inputs and the detection rule of ErrorSpikeWorkflow: per-minute counts against a baseline.

Pure data and pure functions, cheap to import: the workflow loads this module through
the sandbox's passthrough, activities use it directly. Nothing here reads a clock;
callers pass ``now`` (the workflow's clock or the activity's ``as_of``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field


class SpikeConfig(BaseModel):
    """Thresholds, read from the worker's settings by the activity that starts the detector."""

    min_count: int
    factor: float
    window_minutes: int = 5
    baseline_minutes: int = 60
    cooldown_minutes: int = 30


class AutoIssueReported(BaseModel):
    issue_id: str
    occurred_at: datetime


class SpikeInput(BaseModel):
    config: SpikeConfig
    #: issue id → the minute it was reported in (only minutes still inside the horizon).
    seen: dict[str, datetime] = Field(default_factory=dict)
    latest_issue_id: str | None = None
    cooldown_until: datetime | None = None


class SpikeReading(BaseModel):
    """The recent window against its baseline; all but ``alarm_above`` is the ``data`` of a SYSTEM_ERROR_SPIKE."""

    recent_count: int
    window_minutes: int
    baseline_per_minute: float
    #: the configured factor over the usual rate (templates read it as "N times the usual rate")
    threshold: float
    per_minute: list[int]
    #: the count the window must exceed: max(min_count, factor × baseline per window)
    alarm_above: float

    @property
    def is_spike(self) -> bool:
        return self.recent_count > self.alarm_above

    def notification_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"alarm_above"})


def minute_of(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(second=0, microsecond=0)


def read_spike(seen: dict[str, datetime], config: SpikeConfig, now: datetime) -> SpikeReading:
    """Counts per minute over the last ``window_minutes`` (this one included) and the baseline before it."""
    current = minute_of(now)
    window_start = current - timedelta(minutes=config.window_minutes - 1)
    baseline_start = window_start - timedelta(minutes=config.baseline_minutes)
    per_minute = [0] * config.window_minutes
    baseline = 0
    for minute in seen.values():
        if minute >= window_start:
            per_minute[min(int((minute - window_start).total_seconds() // 60), config.window_minutes - 1)] += 1
        elif minute >= baseline_start:
            baseline += 1
    baseline_per_minute = baseline / config.baseline_minutes
    alarm_above = max(float(config.min_count), config.factor * baseline_per_minute * config.window_minutes)
    return SpikeReading(
        recent_count=sum(per_minute),
        window_minutes=config.window_minutes,
        baseline_per_minute=round(baseline_per_minute, 2),
        threshold=config.factor,
        per_minute=per_minute,
        alarm_above=round(alarm_above, 2),
    )


def spike_horizon(config: SpikeConfig, now: datetime) -> datetime:
    """Reports from before this minute no longer count towards window or baseline."""
    return minute_of(now) - timedelta(minutes=config.window_minutes - 1 + config.baseline_minutes)
