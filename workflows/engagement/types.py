"""Input and result of EngagementRetentionWorkflow (issue 17 §1: NOTIFLOW_ENGAGEMENT_RETENTION_DAYS).

Passed through the sandbox (``workers/main.py : DECLARATIONS``): pydantic models, no functions.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RetentionInput(BaseModel):
    #: unset = the worker's NOTIFLOW_ENGAGEMENT_RETENTION_DAYS (so a changed setting needs no schedule sync)
    days: int | None = Field(default=None, ge=1)


class RetentionCutoff(BaseModel):
    """What the activity is asked: delete engagement events older than ``days`` before ``now``."""

    now: datetime
    days: int | None = None


class RetentionResult(BaseModel):
    deleted: int
    cutoff: datetime
