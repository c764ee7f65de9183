"""Inputs and outputs of the delivery activities and workflows (pydantic).

A ``NotificationRequest`` says what to tell whom: either an issue event (the
routing rules pick recipients) or an explicit type and audience (escalations,
summaries, alarms, send-test). ``plan_deliveries`` turns it into queue rows;
the deliver activities send those rows in batches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from notiflow.contracts import Channel, Frequency, IssueEvent, NotificationType


class Audience(BaseModel):
    """An explicit set of recipients: user ids, everyone with a role, on-call admins."""

    user_ids: list[str] = Field(default_factory=list)
    admins: bool = False
    on_call: bool = False


class NotificationRequest(BaseModel):
    #: Unique per logical notification; part of every queue row's dedupe key.
    source_id: str
    event: IssueEvent | None = None
    notification_type: NotificationType | None = None
    audience: Audience | None = None
    issue_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    channels: list[Channel] | None = None
    #: send-test: deliver even where preferences would not.
    ignore_preferences: bool = False
    #: send-test: fill the template context with sample issue data.
    sample: bool = False
    workflow_id: str | None = None
    #: the workflow's clock (quiet hours are judged at this instant, not the worker's wall clock)
    as_of: datetime | None = None


class RetrySpec(BaseModel):
    """The worker's retry settings, recorded in history so replays agree."""

    maximum_attempts: int
    initial_seconds: float
    max_seconds: float


class Delivery(BaseModel):
    queue_id: str
    channel: Channel
    #: quiet hours: not before this instant (None = now).
    not_before: datetime | None = None
    #: HOURLY / DAILY: goes into the recipient's digest (preference, or over the hourly rate cap).
    frequency: Frequency = Frequency.IMMEDIATE


class DeliveryPlan(BaseModel):
    deliveries: list[Delivery] = Field(default_factory=list)
    skipped: dict[str, int] = Field(default_factory=dict)
    failed: dict[str, int] = Field(default_factory=dict)
    already_done: int = 0
    batch_size: int = 50
    retry: RetrySpec


class DeliveryBatch(BaseModel):
    channel: Channel
    queue_ids: list[str]
    maximum_attempts: int


class BatchResult(BaseModel):
    sent: int = 0
    failed: int = 0


class ChannelCount(BaseModel):
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: handed to the recipients' digests, sent when those go out.
    digested: int = 0


class DeliveryOutcome(BaseModel):
    """What a pipeline run did, per channel."""

    channels: dict[str, ChannelCount] = Field(default_factory=dict)

    def add(self, channel: str, *, sent: int = 0, failed: int = 0, skipped: int = 0, digested: int = 0) -> None:
        count = self.channels.setdefault(channel, ChannelCount())
        count.sent += sent
        count.failed += failed
        count.skipped += skipped
        count.digested += digested


class MarkFailed(BaseModel):
    queue_ids: list[str]
    reason: str
