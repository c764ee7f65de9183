"""The activity that feeds the long-running workflows (SLA, error spike) from each issue event.

Workflows cannot signal-with-start another workflow, so ``feed_timers`` does it
with the worker's own Temporal client: one call per issue event. It also reads
the escalation policy for the event's priority, so the SLA arms (or re-arms)
from the signal alone, without an activity of its own.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.implements import implements
from activities.snapshot import Snapshot
from notiflow.contracts import EventType, IssueEvent, NotificationType, is_closed
from notiflow.keys import SPIKE_DETECTOR_ID, sla_workflow_id
from notiflow.models import EscalationPolicyRow, IssueRow
from notiflow.search import search_attributes
from notiflow.settings import Settings
from workflows.delivery import interface
from workflows.sla.types import EscalationPolicy, IssueObserved, SlaInput
from workflows.sla.workflows import IssueSlaWorkflow
from workflows.spike.types import AutoIssueReported, SpikeConfig, SpikeInput
from workflows.spike.workflows import ErrorSpikeWorkflow

#: Event types that mean "a new auto-reported issue" (the tracker may send either for one issue).
AUTO_REPORT_TYPES = frozenset({EventType.ISSUE_CREATED, EventType.AUTO_ISSUE_DETECTED})


class SlaActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings, client: Client):
        self.sessions = sessions
        self.settings = settings
        self.client = client
        self.policies = Snapshot(_load_policies)

    @implements(interface.feed_timers)
    async def feed_timers(self, event: IssueEvent) -> None:
        """Signal the issue's SLA (starting it while the issue is open) and, for auto-reported issues, the spike detector."""
        await self._feed_sla(event)
        if event.issue.is_auto_reported and event.type in AUTO_REPORT_TYPES:
            await self._feed_spike_detector(event)

    async def _feed_sla(self, event: IssueEvent) -> None:
        issue = event.issue
        seen = IssueObserved.of(event, await self._escalation_policy(issue.priority))
        workflow_id = sla_workflow_id(issue.id)
        if is_closed(issue.status) or await self._closed_by_newer_event(event):
            # Never start an SLA for a closed issue: only tell a running one.
            try:
                await self.client.get_workflow_handle(workflow_id).signal(IssueSlaWorkflow.observe, seen)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
            return
        await self.client.start_workflow(
            IssueSlaWorkflow.run,
            SlaInput(issue_id=issue.id),
            id=workflow_id,
            task_queue=self.settings.task_queue,
            start_signal="observe",
            start_signal_args=[seen],
            search_attributes=search_attributes(
                issue_id=issue.id, notification_type=NotificationType.ISSUE_OVERDUE, priority=issue.priority
            ),
            static_summary=f"SLA · {issue.id} · {issue.priority}",
        )

    async def _closed_by_newer_event(self, event: IssueEvent) -> bool:
        """A late, older event about an issue that has since been resolved or closed must not restart its SLA."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(IssueRow.status, IssueRow.last_event_at).where(IssueRow.id == event.issue.id)
                )
            ).first()
        return row is not None and row.last_event_at > event.occurred_at and is_closed(row.status)

    async def _escalation_policy(self, priority: str) -> EscalationPolicy | None:
        """The current policy for a priority; None when an administrator removed it (no escalation)."""
        async with self.sessions() as session:
            return (await self.policies.get(session)).get(priority)

    async def _feed_spike_detector(self, event: IssueEvent) -> None:
        config = SpikeConfig(min_count=self.settings.spike_min_count, factor=self.settings.spike_factor)
        await self.client.start_workflow(
            ErrorSpikeWorkflow.run,
            SpikeInput(config=config),
            id=SPIKE_DETECTOR_ID,
            task_queue=self.settings.task_queue,
            start_signal="auto_issue_reported",
            start_signal_args=[AutoIssueReported(issue_id=event.issue.id, occurred_at=event.occurred_at)],
            search_attributes=search_attributes(notification_type=NotificationType.SYSTEM_ERROR_SPIKE),
            static_summary="error spike detector · auto-reported issues per minute",
        )

    def activities(self) -> list:
        return [self.feed_timers]


async def _load_policies(session: AsyncSession) -> dict[str, EscalationPolicy]:
    rows = (await session.execute(select(EscalationPolicyRow))).scalars()
    return {
        row.priority: EscalationPolicy(
            priority=row.priority,
            due_minutes=row.due_minutes,
            tiers=row.tiers,
            repeat_last=row.repeat_last,
            repeat_every_minutes=row.repeat_every_minutes,
        )
        for row in rows
    }
