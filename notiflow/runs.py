"""What the programs ask of the workflows and get back: the inputs and results of the public runs.

Shared by the client, the API and the CLI (which start runs) and by the workflows and activities (which
take them), so that nothing above has to import a workflow module to start one. Plain pydantic models,
no I/O: the sandbox passes this module through like the event contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from notiflow.contracts import Channel, IssueEvent, NotificationType


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
    #: the run planning it: a later run of the same workflow (an operator's reset) re-queues what this one left FAILED
    run_id: str | None = None
    #: the workflow's clock (quiet hours are judged at this instant, not the worker's wall clock)
    as_of: datetime | None = None
    #: escalation on unread: of the recipients the event (or audience) resolves to, only these
    only_recipients: list[str] | None = None
    #: escalation on unread: why this is sent again ("unread after 60 min"), recorded on every row
    escalated_from: str | None = None


class ChannelCount(BaseModel):
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: handed to the recipients' digests, sent when those go out.
    digested: int = 0


class DeliveryOutcome(BaseModel):
    """What a pipeline run did, per channel."""

    channels: dict[str, ChannelCount] = Field(default_factory=dict)
    #: set when a critical notification found nobody in its audience and went to a wider one
    fallback: str | None = None
    #: critical notifications that FAILED on one channel and went out on the next, by route (``EMAIL→SMS``)
    fallbacks: dict[str, int] = Field(default_factory=dict)
    #: rows planned in a running experiment, by "experiment name: arm" (a holdout's arm is ``holdout``)
    experiments: dict[str, int] = Field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """SENT (nothing failed), PARTIAL (some failed), FAILED (every delivery failed) — the run's search attribute."""
        sent = sum(c.sent + c.digested for c in self.channels.values())
        failed = sum(c.failed for c in self.channels.values())
        if not sent and self.fallback and not self.channels:  # a critical notification found nobody at all
            return "FAILED"
        if not failed:
            return "SENT"
        return "PARTIAL" if sent else "FAILED"

    def describe(self) -> str:
        """One line for the run's details in the web UI, e.g. ``PARTIAL · EMAIL 4 sent, 1 failed · IN_APP 5 sent``."""
        parts = [self.verdict]
        for channel, count in sorted(self.channels.items()):
            figures = [
                f"{n} {label}"
                for n, label in (
                    (count.sent, "sent"),
                    (count.failed, "failed"),
                    (count.digested, "digested"),
                    (count.skipped, "skipped"),
                )
                if n
            ]
            parts.append(f"{channel} {', '.join(figures) or 'nothing'}")
        if self.fallback:
            parts.append(self.fallback)
        if self.fallbacks:
            parts.append(
                "critical fallback " + ", ".join(f"{route} {n}" for route, n in sorted(self.fallbacks.items()))
            )
        if self.experiments:
            parts.append("experiment " + ", ".join(f"{arm} {n}" for arm, n in sorted(self.experiments.items())))
        return " · ".join(parts)

    def add(self, channel: str, *, sent: int = 0, failed: int = 0, skipped: int = 0, digested: int = 0) -> None:
        count = self.channels.setdefault(channel, ChannelCount())
        count.sent += sent
        count.failed += failed
        count.skipped += skipped
        count.digested += digested


class RedeliveryFilter(BaseModel):
    """Which FAILED rows an operator wants sent again (every field narrows; none = every FAILED row)."""

    issue_id: str | None = None
    channel: Channel | None = None
    notification_type: NotificationType | None = None
    recipient_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    workflow_id: str | None = None


class RedeliveryRequest(BaseModel):
    """One operator request: idempotent on ``request_id`` (workflow ``redeliver/{request_id}``)."""

    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    requested_by: str = Field(min_length=1, max_length=200)
    filter: RedeliveryFilter = Field(default_factory=RedeliveryFilter)
    workflow_id: str | None = None
