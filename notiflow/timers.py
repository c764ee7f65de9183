"""Inputs, state and time rules of the long-running workflows: SLA, digest, summary, error spike.

Pure data and pure functions, cheap to import: workflows load this module through
the sandbox's passthrough, activities use it directly. Nothing here reads a
clock; callers pass ``now`` (the workflow's clock or the activity's ``as_of``).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from notiflow.contracts import EventType, Frequency, IssueEvent, IssueStatus, NotificationType, Priority
from notiflow.plans import DeliveryOutcome, DeliveryPlan
from notiflow.routing import is_closed, quiet_until

# ----------------------------------------------------------------------- SLA


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
    def of(cls, event: IssueEvent, policy: EscalationPolicy | None) -> "IssueObserved":
        issue = event.issue
        return cls(event_id=event.event_id, type=event.type, occurred_at=event.occurred_at, issue_id=issue.id,
                   priority=issue.priority, status=issue.status,
                   assignee_id=issue.assignee.id if issue.assignee else None, created_at=issue.created_at,
                   policy=policy)


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
        firings.append(Firing(at=due_at + timedelta(minutes=tier.after_minutes), tier=number, repeat=0,
                              audience=tier.audience))
    if policy.tiers:
        last = firings[-1]
        every = timedelta(minutes=policy.repeat_every_minutes)
        firings += [last.model_copy(update={"at": last.at + every * n, "repeat": n})
                    for n in range(1, policy.repeat_last + 1)]
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
        return escalation_schedule(self.due_at, self.policy) if self.policy else []

    def next_firing(self) -> Firing | None:
        schedule = self.schedule()
        return None if self.closed or self.fired >= len(schedule) else schedule[self.fired]


def apply_observation(state: SlaState | None, seen: IssueObserved) -> SlaState:
    """Apply one event: priority change or reopening re-arms, assignment does not, stale events are ignored."""
    if state is None:
        anchor = seen.occurred_at if seen.type == EventType.ISSUE_REOPENED else seen.created_at
        return SlaState(issue_id=seen.issue_id, priority=seen.priority, status=seen.status,
                        assignee_id=seen.assignee_id, created_at=seen.created_at, anchor=anchor,
                        last_event_at=seen.occurred_at, policy=seen.policy)
    if seen.occurred_at < state.last_event_at:
        return state
    reopened = seen.type == EventType.ISSUE_REOPENED or (state.closed and not is_closed(seen.status))
    updated = state.model_copy(update={
        "priority": seen.priority, "status": seen.status, "assignee_id": seen.assignee_id,
        "created_at": seen.created_at, "last_event_at": seen.occurred_at,
        "anchor": seen.occurred_at if reopened else state.anchor,
    })
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


# -------------------------------------------------------------- error spike


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

    def notification_data(self) -> dict:
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
    return SpikeReading(recent_count=sum(per_minute), window_minutes=config.window_minutes,
                        baseline_per_minute=round(baseline_per_minute, 2), threshold=config.factor,
                        per_minute=per_minute, alarm_above=round(alarm_above, 2))


def spike_horizon(config: SpikeConfig, now: datetime) -> datetime:
    """Reports from before this minute no longer count towards window or baseline."""
    return minute_of(now) - timedelta(minutes=config.window_minutes - 1 + config.baseline_minutes)


# ------------------------------------------------------------------- digest


class DigestRoute(BaseModel):
    queue_id: str
    frequency: Frequency


class DigestRouting(BaseModel):
    """Queue rows the plan put into digests; ``as_of`` is the workflow's clock."""

    items: list[DigestRoute]
    as_of: datetime


class DigestItem(BaseModel):
    queue_id: str
    frequency: Frequency
    #: When the digest that carries it goes out (recipient's zone, past their quiet hours).
    flush_at: datetime


class DigestAdditions(BaseModel):
    items: list[DigestItem]


class DigestInput(BaseModel):
    user_id: str
    #: Items carried over continue-as-new (not yet due at the last flush).
    pending: list[DigestItem] = Field(default_factory=list)


class DigestFlush(BaseModel):
    user_id: str
    #: Unique per user and flush; names the digest rows (dedupe) and the items' provider_response.
    digest_id: str
    period: Frequency
    queue_ids: list[str]


class DigestComposition(BaseModel):
    """The digest rows composed for one flush (one per channel) and what is left to deliver of them."""

    digest_ids: list[str]
    plan: DeliveryPlan


class DigestSettle(BaseModel):
    digest_ids: list[str]


class DigestResult(BaseModel):
    items: int
    outcome: DeliveryOutcome


DEFAULT_DIGEST_HOUR = 8


def next_digest_at(frequency: Frequency, now: datetime, tz_name: str, *, digest_hour: int | None = None,
                   quiet_start: time | None = None, quiet_end: time | None = None) -> datetime:
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


# ------------------------------------------------------------------ summary

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
