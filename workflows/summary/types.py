"""Inputs and report of SummaryWorkflow (the daily and weekly summaries).

Passed through the sandbox (``workers/main.py : DECLARATIONS``): pydantic models and constants, no
functions, nothing that reads a clock — tests/test_sandbox.py checks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from notiflow.contracts import NotificationType
from notiflow.runs import DeliveryOutcome

#: How many days each summary covers, ending at its scheduled time.
SUMMARY_DAYS: dict[NotificationType, int] = {
    NotificationType.DAILY_ISSUE_SUMMARY: 1,
    NotificationType.WEEKLY_ISSUE_REPORT: 7,
}


class SummaryInput(BaseModel):
    report: Literal[NotificationType.DAILY_ISSUE_SUMMARY, NotificationType.WEEKLY_ISSUE_REPORT]


class SummaryPeriod(BaseModel):
    report: NotificationType
    period_end: datetime


class OverdueIssue(BaseModel):
    id: str
    title: str
    priority: str
    age_hours: float


class CategoryCount(BaseModel):
    category: str
    count: int


class SummaryReport(BaseModel):
    """``data`` of DAILY_ISSUE_SUMMARY / WEEKLY_ISSUE_REPORT (templating.sample_context's shape)."""

    period_start: datetime
    period_end: datetime
    new_count: int
    resolved_count: int
    open_by_priority: dict[str, int]
    overdue: list[OverdueIssue]
    mean_hours_to_resolve: float | None
    median_hours_to_resolve: float | None
    top_categories: list[CategoryCount]
    auto_reported_count: int


class SummaryResult(BaseModel):
    report: SummaryReport
    outcome: DeliveryOutcome
