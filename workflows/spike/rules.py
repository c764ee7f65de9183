"""The detection rule of ErrorSpikeWorkflow: per-minute counts against a baseline.

Pure functions, run inside the sandbox. Nothing here reads a clock; callers pass ``now`` (the
workflow's clock or the activity's ``as_of``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from workflows.spike.types import SpikeConfig, SpikeReading


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
