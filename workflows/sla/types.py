"""Inputs and state of IssueSlaWorkflow: escalation policies, tiers, due times — declarations only.

Passed through the sandbox (``workers/main.py : DECLARATIONS``): pydantic models and properties computed
from their own fields, no functions, nothing that reads a clock — tests/test_sandbox.py checks it. The
rules that move the state on are ``rules.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal

from pydantic import BaseModel, Field

from notiflow.contracts import EventType, IssueEvent, IssueStatus, Priority, is_closed


class EscalationTier(BaseModel):
    after_minutes: int = Field(ge=0)
    audience: Literal["admins", "on_call"]


class EscalationPolicy(BaseModel):
    """One escalation_policies row: due time for a priority, then who hears and when."""

    priority: Priority
    due_minutes: int
    tiers: list[EscalationTier] = Field(default_factory=list)
    repeat_last: int = 0
    repeat_every_minutes: int = 240


class IssueObserved(BaseModel):
    """What the SLA needs from one issue event: the signal ``feed_timers`` sends it."""

    event_id: str
    type: EventType
    occurred_at: datetime
    issue_id: str
    priority: Priority
    status: IssueStatus
    assignee_id: str | None
    created_at: datetime
    #: The policy for ``priority`` as the table says now (None: no escalation for it); used when this event arms.
    policy: EscalationPolicy | None

    @classmethod
    def of(cls, event: IssueEvent, policy: EscalationPolicy | None) -> IssueObserved:
        issue = event.issue
        return cls(
            event_id=event.event_id,
            type=event.type,
            occurred_at=event.occurred_at,
            issue_id=issue.id,
            priority=issue.priority,
            status=issue.status,
            assignee_id=issue.assignee.id if issue.assignee else None,
            created_at=issue.created_at,
            policy=policy,
        )


class Firing(BaseModel):
    """One overdue notice: tier 0 is the assignee at the due time, tiers 1… follow the policy."""

    at: datetime
    tier: int
    repeat: int
    audience: Literal["assignee", "admins", "on_call"]


class SlaState(BaseModel):
    """An issue's SLA as IssueSlaWorkflow keeps it (and carries over continue-as-new)."""

    issue_id: str
    priority: Priority
    status: IssueStatus
    assignee_id: str | None
    created_at: datetime
    #: The SLA counts from here: the issue's creation, or its latest reopening.
    anchor: datetime
    #: Newest occurred_at applied; older events do not roll the state back.
    last_event_at: datetime
    #: Read from escalation_policies (by ``feed_timers``) when this arming began; None: no escalation.
    policy: EscalationPolicy | None = None
    #: Firings of the current arming already sent (index into its schedule).
    fired: int = 0
    tier_reached: int | None = None

    @property
    def closed(self) -> bool:
        return is_closed(self.status)

    @property
    def arm(self) -> str:
        """Names one arming; same anchor and priority = same arming, so its notices are sent once."""
        return f"{self.anchor.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{self.priority}"

    @property
    def due_at(self) -> datetime | None:
        return self.anchor + timedelta(minutes=self.policy.due_minutes) if self.policy else None


class SlaInput(BaseModel):
    issue_id: str
    #: Set when the workflow continues as new; a fresh SLA waits for its first signal.
    state: SlaState | None = None


class SlaStatus(BaseModel):
    """Answer of the ``status`` query."""

    issue_id: str
    priority: Priority | None = None
    issue_status: IssueStatus | None = None
    due_at: datetime | None = None
    tier_reached: int | None = None
    next_firing_at: datetime | None = None
    next_tier: int | None = None
    next_audience: str | None = None
    closed: bool = False
