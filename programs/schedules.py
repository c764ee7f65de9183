"""The Temporal Schedules: ``summary-daily`` and ``summary-weekly`` (SummaryWorkflow), and
``engagement-retention`` (EngagementRetentionWorkflow, daily: NOTIFLOW_ENGAGEMENT_RETENTION_DAYS).

``sync_schedules`` is idempotent: it creates what is missing and brings what
exists up to date (spec, time zone, task queue), keeping whatever state an
operator set in the web UI (paused, note).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from notiflow.contracts import NotificationType
from notiflow.keys import DAILY_SUMMARY_SCHEDULE_ID, ENGAGEMENT_RETENTION_SCHEDULE_ID, WEEKLY_SUMMARY_SCHEDULE_ID
from notiflow.search import search_attributes
from notiflow.settings import Settings
from workflows.engagement.types import RetentionInput
from workflows.summary.types import SummaryInput

#: schedule id → (report, cron in the configured time zone)
SUMMARY_SCHEDULES: dict[str, tuple[NotificationType, str]] = {
    DAILY_SUMMARY_SCHEDULE_ID: (NotificationType.DAILY_ISSUE_SUMMARY, "0 8 * * *"),  # 08:00 every day
    WEEKLY_SUMMARY_SCHEDULE_ID: (NotificationType.WEEKLY_ISSUE_REPORT, "0 8 * * 1"),  # Monday 08:00
}


def summary_schedule(report: NotificationType, cron: str, settings: Settings, schedule_id: str) -> Schedule:
    from workflows.summary.workflows import SummaryWorkflow

    return Schedule(
        action=ScheduleActionStartWorkflow(
            SummaryWorkflow.run,
            SummaryInput(report=report),
            id=schedule_id,
            task_queue=settings.task_queue,
            typed_search_attributes=search_attributes(notification_type=report),
            static_summary=f"{report} ({cron} {settings.timezone})",
        ),
        spec=ScheduleSpec(cron_expressions=[cron], time_zone_name=settings.timezone),
        # A summary missed while Temporal was down still goes out if it is less than a day late.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


#: Engagement retention: every day at 03:30 in the configured time zone.
ENGAGEMENT_RETENTION_CRON = "30 3 * * *"


def engagement_retention_schedule(settings: Settings) -> Schedule:
    from workflows.engagement.workflows import EngagementRetentionWorkflow

    return Schedule(
        action=ScheduleActionStartWorkflow(
            EngagementRetentionWorkflow.run,
            RetentionInput(),  # the worker's NOTIFLOW_ENGAGEMENT_RETENTION_DAYS
            id=ENGAGEMENT_RETENTION_SCHEDULE_ID,
            task_queue=settings.task_queue,
            static_summary=f"engagement events older than NOTIFLOW_ENGAGEMENT_RETENTION_DAYS "
            f"({ENGAGEMENT_RETENTION_CRON} {settings.timezone})",
        ),
        spec=ScheduleSpec(cron_expressions=[ENGAGEMENT_RETENTION_CRON], time_zone_name=settings.timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


def _desired(settings: Settings) -> dict[str, Schedule]:
    schedules = {
        schedule_id: summary_schedule(report, cron, settings, schedule_id)
        for schedule_id, (report, cron) in SUMMARY_SCHEDULES.items()
    }
    schedules[ENGAGEMENT_RETENTION_SCHEDULE_ID] = engagement_retention_schedule(settings)
    return schedules


async def sync_schedules(client: Client, settings: Settings) -> list[str]:
    """Create or update the schedules (summaries, engagement retention); returns their ids."""
    wanted = _desired(settings)
    for schedule_id, desired in wanted.items():
        try:
            await client.create_schedule(schedule_id, desired)
        except ScheduleAlreadyRunningError:

            def keep_state(current: ScheduleUpdateInput, desired: Schedule = desired) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=dataclasses.replace(desired, state=current.description.schedule.state))

            await client.get_schedule_handle(schedule_id).update(keep_state)
    return list(wanted)
