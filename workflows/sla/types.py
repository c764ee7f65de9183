"""Inputs, state and time rules of IssueSlaWorkflow: escalation policies, tiers, due times.

Pure data and pure functions, cheap to import: the workflow loads this module through
the sandbox's passthrough, activities use it directly. Nothing here reads a clock;
callers pass ``now`` (the workflow's clock or the activity's ``as_of``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal

from pydantic import BaseModel, Field

from notiflow.contracts import EventType, IssueEvent, IssueStatus, Priority
from workflows.delivery.rules import is_closed


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


def escalation_schedule(due_at: datetime, policy: EscalationPolicy) -> list[Firing]:
    """Every firing of one arming, in time order; the last tier repeats as the policy says."""
    firings = [Firing(at=due_at, tier=0, repeat=0, audience="assignee")]
    for number, tier in enumerate(policy.tiers, start=1):
        firings.append(
            Firing(at=due_at + timedelta(minutes=tier.after_minutes), tier=number, repeat=0, audience=tier.audience)
        )
    if policy.tiers:
        last = firings[-1]
        every = timedelta(minutes=policy.repeat_every_minutes)
        firings += [
            last.model_copy(update={"at": last.at + every * n, "repeat": n}) for n in range(1, policy.repeat_last + 1)
        ]
    return sorted(firings, key=lambda f: f.at)


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

    def schedule(self) -> list[Firing]:
        due_at = self.due_at
        return escalation_schedule(due_at, self.policy) if self.policy and due_at else []

    def next_firing(self) -> Firing | None:
        schedule = self.schedule()
        return None if self.closed or self.fired >= len(schedule) else schedule[self.fired]


def apply_observation(state: SlaState | None, seen: IssueObserved) -> SlaState:
    """Apply one event: priority change or reopening re-arms, assignment does not, stale events are ignored."""
    if state is None:
        anchor = seen.occurred_at if seen.type == EventType.ISSUE_REOPENED else seen.created_at
        return SlaState(
            issue_id=seen.issue_id,
            priority=seen.priority,
            status=seen.status,
            assignee_id=seen.assignee_id,
            created_at=seen.created_at,
            anchor=anchor,
            last_event_at=seen.occurred_at,
            policy=seen.policy,
        )
    if seen.occurred_at < state.last_event_at:
        return state
    reopened = seen.type == EventType.ISSUE_REOPENED or (state.closed and not is_closed(seen.status))
    updated = state.model_copy(
        update={
            "priority": seen.priority,
            "status": seen.status,
            "assignee_id": seen.assignee_id,
            "created_at": seen.created_at,
            "last_event_at": seen.occurred_at,
            "anchor": seen.occurred_at if reopened else state.anchor,
        }
    )
    if updated.arm != state.arm:
        updated = updated.model_copy(update={"policy": seen.policy, "fired": 0, "tier_reached": None})
    return updated


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
