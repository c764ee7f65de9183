"""ErrorSpikeWorkflow (id ``error-spike-detector``): auto-reported issues per minute, and an alarm when they spike.

Every auto-reported issue signals it (signal-with-start from ``feed_timers``, which
also passes the thresholds from the worker's settings, so they are part of the
history). When the last few minutes exceed max(min_count, factor × baseline),
on-call admins get one SYSTEM_ERROR_SPIKE, then nothing during the cooldown.
Once nothing is left inside the baseline horizon the run simply ends: the next
auto-reported issue starts a fresh one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import WorkflowAlreadyStartedError

from notiflow.contracts import NotificationType
from notiflow.keys import notify_workflow_id
from notiflow.runs import Audience, NotificationRequest
from notiflow.search import search_attributes
from workflows.delivery.notify import NotifyWorkflow
from workflows.delivery.pipeline import run_pipeline
from workflows.history import should_continue_as_new
from workflows.spike.rules import minute_of, read_spike, spike_horizon
from workflows.spike.types import AutoIssueReported, SpikeInput, SpikeReading

#: Marker for the alarm as a child run (runs recorded before it send the alarm inline and replay that way).
ALARM_AS_CHILD = "spike-alarm-as-child"


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ErrorSpikeWorkflow:
    @workflow.init
    def __init__(self, start: SpikeInput) -> None:
        self._config = start.config
        self._seen = dict(start.seen)
        self._latest_issue_id = start.latest_issue_id
        self._cooldown_until = start.cooldown_until
        self._new = False

    @workflow.signal
    def auto_issue_reported(self, report: AutoIssueReported) -> None:
        """Count each issue once, in the minute it was reported (never later than now)."""
        now = workflow.now()
        minute = minute_of(min(report.occurred_at, now))
        if report.issue_id in self._seen or minute < spike_horizon(self._config, now):
            return
        self._seen[report.issue_id] = minute
        self._latest_issue_id = report.issue_id
        self._new = True

    @workflow.query
    def reading(self) -> SpikeReading:
        return read_spike(self._seen, self._config, workflow.now())

    @workflow.run
    async def run(self, start: SpikeInput) -> None:
        while True:
            self._new = False
            horizon = spike_horizon(self._config, workflow.now())
            self._seen = {issue: minute for issue, minute in self._seen.items() if minute >= horizon}
            reading = read_spike(self._seen, self._config, workflow.now())
            if reading.is_spike and not self._cooling_down():
                await self._alarm(reading)
                self._cooldown_until = workflow.now() + timedelta(minutes=self._config.cooldown_minutes)
            if not self._seen and not self._cooling_down():
                return
            if should_continue_as_new():
                workflow.continue_as_new(
                    SpikeInput(
                        config=self._config,
                        seen=self._seen,
                        latest_issue_id=self._latest_issue_id,
                        cooldown_until=self._cooldown_until,
                    )
                )
            workflow.set_current_details(
                f"{reading.recent_count} auto-reported issues in the last {reading.window_minutes} min "
                f"(alarm above {reading.alarm_above:g})"
                + (f"; cooling down until {self._cooldown_until:%H:%M} UTC" if self._cooling_down() else "")
            )
            try:
                await workflow.wait_condition(
                    lambda: self._new, timeout=self._next_wake() - workflow.now(), timeout_summary="window moves on"
                )
            except TimeoutError:
                pass

    def _cooling_down(self) -> bool:
        return self._cooldown_until is not None and workflow.now() < self._cooldown_until

    def _next_wake(self) -> datetime:
        """When the oldest report leaves the horizon, or the cooldown ends, whichever is first."""
        span = timedelta(minutes=self._config.window_minutes + self._config.baseline_minutes)
        candidates = [minute + span for minute in self._seen.values()]
        if self._cooldown_until is not None and self._cooling_down():
            candidates.append(self._cooldown_until)
        return min(candidates)

    async def _alarm(self, reading: SpikeReading) -> None:
        """One SYSTEM_ERROR_SPIKE to on-call admins, as a NotifyWorkflow child named after the minute.

        The child is only started here, not awaited: a mail that retries for hours (or waits out a
        deadline) never stalls the counting, and the alarm is sent at most once per minute's id.
        """
        now = workflow.now()
        request = NotificationRequest(
            source_id=f"spike/{minute_of(now):%Y%m%dT%H%MZ}",
            notification_type=NotificationType.SYSTEM_ERROR_SPIKE,
            audience=Audience(on_call=True),
            issue_id=self._latest_issue_id,
            data=reading.notification_data(),
            workflow_id=workflow.info().workflow_id,
            as_of=now,
        )
        if not workflow.patched(ALARM_AS_CHILD):
            await run_pipeline(request)
            return
        try:
            await workflow.start_child_workflow(
                NotifyWorkflow.run,
                request,
                id=notify_workflow_id(request.source_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=search_attributes(
                    issue_id=self._latest_issue_id, notification_type=NotificationType.SYSTEM_ERROR_SPIKE
                ),
                static_summary=f"error spike · {reading.recent_count} auto-reported issues in "
                f"{reading.window_minutes} min",
            )
        except WorkflowAlreadyStartedError:
            pass


WORKFLOWS = [ErrorSpikeWorkflow]
