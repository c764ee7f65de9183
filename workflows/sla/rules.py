"""The time rules of IssueSlaWorkflow: the escalation schedule of an arming, and how an event moves the state.

Pure functions, run inside the sandbox. Nothing here reads a clock; callers pass times in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from notiflow.contracts import EventType, is_closed
from workflows.sla.types import EscalationPolicy, Firing, IssueObserved, SlaState


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


def schedule_of(state: SlaState) -> list[Firing]:
    """Every firing of the state's current arming (none without a policy)."""
    due_at = state.due_at
    return escalation_schedule(due_at, state.policy) if state.policy and due_at else []


def next_firing(state: SlaState) -> Firing | None:
    schedule = schedule_of(state)
    return None if state.closed or state.fired >= len(schedule) else schedule[state.fired]
