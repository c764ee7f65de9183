"""IssueSlaWorkflow (id ``issue/{issue_id}/sla``): an issue's due time and its escalations.

Every event of the issue reaches it by signal-with-start (activity
``feed_timers``). The timer is a ``wait_condition`` with a timeout, so a signal
re-arms it at once. Each notice is a NotifyWorkflow child (started by its name, ``NOTIFY_WORKFLOW``: an SLA run,
re-created by the sandbox for every issue, then need not load the delivery pipeline) named after its source
id: it is sent at most once, does not hold up the next tier while it waits out
someone's quiet hours, and is findable under the issue's search attributes.
"""

from __future__ import annotations

from datetime import datetime, timezone

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import WorkflowAlreadyStartedError

from notiflow.contracts import NotificationType
from notiflow.keys import NOTIFY_WORKFLOW, notify_workflow_id
from notiflow.runs import Audience, NotificationRequest
from notiflow.search import ISSUE_PRIORITY, search_attributes
from workflows.history import should_continue_as_new
from workflows.sla.rules import apply_observation, next_firing, schedule_of
from workflows.sla.types import Firing, IssueObserved, SlaInput, SlaState, SlaStatus


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class IssueSlaWorkflow:
    @workflow.init
    def __init__(self, start: SlaInput) -> None:
        self._issue_id = start.issue_id
        self._state: SlaState | None = start.state
        self._changed = False

    @workflow.signal
    def observe(self, seen: IssueObserved) -> None:
        self._state = apply_observation(self._state, seen)
        self._changed = True

    @workflow.query
    def status(self) -> SlaStatus:
        state = self._state
        if state is None:
            return SlaStatus(issue_id=self._issue_id)
        upcoming = next_firing(state)
        return SlaStatus(
            issue_id=state.issue_id,
            priority=state.priority,
            issue_status=state.status,
            due_at=state.due_at,
            tier_reached=state.tier_reached,
            next_firing_at=upcoming.at if upcoming else None,
            next_tier=upcoming.tier if upcoming else None,
            next_audience=upcoming.audience if upcoming else None,
            closed=state.closed,
        )

    @property
    def _current(self) -> SlaState:
        """The state once the first observation arrived (``run`` waits for it)."""
        assert self._state is not None
        return self._state

    @workflow.run
    async def run(self, start: SlaInput) -> SlaStatus:
        await workflow.wait_condition(lambda: self._state is not None)
        while not self._current.closed:
            state = self._current
            schedule = schedule_of(state)
            due = [i for i in range(state.fired, len(schedule)) if schedule[i].at <= workflow.now()]
            if due:  # several past due (re-armed late, or a long outage): only the latest is sent
                await self._send(state, schedule[due[-1]])
                if self._current.arm == state.arm:
                    self._state = self._current.model_copy(
                        update={"fired": due[-1] + 1, "tier_reached": schedule[due[-1]].tier}
                    )
                continue
            await self._wait_for_change_or(next_firing(state))
            if not self._current.closed and should_continue_as_new():
                workflow.continue_as_new(SlaInput(issue_id=self._issue_id, state=self._current))
        self._show()
        return self.status()

    async def _wait_for_change_or(self, firing: Firing | None) -> None:
        self._show()
        self._changed = False
        timeout = firing.at - workflow.now() if firing else None
        try:
            await workflow.wait_condition(
                lambda: self._changed,
                timeout=timeout,
                timeout_summary=f"tier {firing.tier} ({firing.audience})" if firing else None,
            )
        except TimeoutError:
            pass

    async def _send(self, state: SlaState, firing: Firing) -> None:
        """Start the notice as a child that outlives this run; a notice already on its way is not sent twice."""
        assert state.due_at is not None  # a state with firings has a due time
        audience = firing.audience if firing.audience != "assignee" or state.assignee_id else "admins"
        source_id = f"sla/{state.issue_id}/{state.arm}/tier-{firing.tier}-{firing.repeat}"
        request = NotificationRequest(
            source_id=source_id,
            notification_type=NotificationType.ISSUE_OVERDUE,
            issue_id=state.issue_id,
            audience=_audience(audience, state),
            data={
                "due_at": state.due_at.isoformat(),
                "overdue_hours": round((workflow.now() - state.due_at).total_seconds() / 3600, 1),
                "tier": firing.tier,
                "audience": audience,
            },
        )
        try:
            await workflow.start_child_workflow(
                NOTIFY_WORKFLOW,
                request,
                id=notify_workflow_id(source_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=search_attributes(
                    issue_id=state.issue_id, notification_type=NotificationType.ISSUE_OVERDUE, priority=state.priority
                ),
                static_summary=f"overdue · {state.issue_id} · tier {firing.tier} ({audience})",
            )
        except WorkflowAlreadyStartedError:
            pass

    def _show(self) -> None:
        """What the web UI shows for this run: the issue's priority as a search attribute, the next escalation."""
        state = self._current
        if workflow.info().typed_search_attributes.get(ISSUE_PRIORITY) != state.priority:
            workflow.upsert_search_attributes([ISSUE_PRIORITY.value_set(str(state.priority))])
        upcoming = next_firing(state)
        if state.closed:
            details = f"{state.issue_id} is {state.status}: no further escalation"
        elif not state.policy:
            details = f"{state.issue_id} · {state.priority}: no escalation policy for this priority"
        else:
            assert state.due_at is not None
            details = f"{state.issue_id} · {state.priority} · due {_utc(state.due_at)} · " + (
                f"next: tier {upcoming.tier} ({upcoming.audience}) at {_utc(upcoming.at)}"
                if upcoming
                else "all escalations sent"
            )
        workflow.set_current_details(details)


def _audience(audience: str, state: SlaState) -> Audience:
    match audience:
        case "assignee":
            return Audience(user_ids=[state.assignee_id] if state.assignee_id else [])
        case "on_call":
            return Audience(on_call=True)
        case _:
            return Audience(admins=True)


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


WORKFLOWS = [IssueSlaWorkflow]
