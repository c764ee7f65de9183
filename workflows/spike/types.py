"""Inputs, state and readings of ErrorSpikeWorkflow: declarations only (the rule is ``rules.py``).

Passed through the sandbox (``workers/main.py : DECLARATIONS``): pydantic models, no functions, nothing
that reads a clock — tests/test_sandbox.py checks it.
"""

from __future__ import annotations

from datetime import datetime
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
