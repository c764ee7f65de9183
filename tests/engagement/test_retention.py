"""NOTIFLOW_ENGAGEMENT_RETENTION_DAYS: the activity deletes what is older, the schedule exists after
`notiflow schedules sync` and its run (on a real worker) applies it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from temporalio.testing import ActivityEnvironment

from activities.engagement.activities import EngagementActivities
from notiflow.engagement import record_engagement
from notiflow.keys import ENGAGEMENT_RETENTION_SCHEDULE_ID
from notiflow.models import EngagementEventRow, NotificationQueueRow
from programs.schedules import sync_schedules
from tests.time_skipping import wait_until
from workflows.engagement.types import RetentionCutoff, RetentionResult
from workflows.engagement.workflows import EngagementRetentionWorkflow

NOW = datetime.now(timezone.utc)


async def rows_with_events(db, ages_in_days: list[int]) -> list[uuid.UUID]:
    """One queue row per age, each with a CLICKED first recorded that many days ago."""
    ids = []
    async with db.begin() as session:
        for age in ages_in_days:
            row_id = uuid.uuid4()
            await session.execute(
                insert(NotificationQueueRow).values(
                    id=row_id,
                    template_name="ISSUE_CREATED.EMAIL.en",
                    delivery_method="EMAIL",
                    notification_type="ISSUE_CREATED",
                    content="body",
                    status="SENT",
                    dedupe_key=f"test/{row_id}",
                )
            )
            assert await record_engagement(session, row_id, "CLICKED", at=NOW - timedelta(days=age)) == 1
            ids.append(row_id)
    return ids


async def remaining(db) -> set[uuid.UUID]:
    async with db() as session:
        return set(await session.scalars(select(EngagementEventRow.queue_id)))


async def test_the_activity_deletes_events_older_than_the_retention(db, settings):
    old, kept, fresh = await rows_with_events(db, [401, 399, 0])
    activities = EngagementActivities(db, settings)  # default: 400 days
    assert settings.engagement_retention_days == 400
    result = await ActivityEnvironment().run(activities.purge_engagement, RetentionCutoff(now=NOW))
    assert result == RetentionResult(deleted=1, cutoff=NOW - timedelta(days=400))
    assert await remaining(db) == {kept, fresh}
    shorter = EngagementActivities(db, settings.model_copy(update={"engagement_retention_days": 30}))
    assert (await ActivityEnvironment().run(shorter.purge_engagement, RetentionCutoff(now=NOW))).deleted == 1
    assert await remaining(db) == {fresh}
    assert old not in await remaining(db)


async def test_the_schedule_exists_after_sync_and_its_run_applies_the_retention(temporal_client, settings, worker, db):
    _old, fresh = await rows_with_events(db, [500, 1])
    ids = await sync_schedules(temporal_client, settings)
    try:
        assert ENGAGEMENT_RETENTION_SCHEDULE_ID in ids
        schedule = temporal_client.get_schedule_handle(ENGAGEMENT_RETENTION_SCHEDULE_ID)
        description = await schedule.describe()
        assert description.schedule.action.workflow == EngagementRetentionWorkflow.__name__
        assert description.schedule.action.task_queue == settings.task_queue
        upcoming = [t.astimezone(ZoneInfo(settings.timezone)) for t in description.info.next_action_times]
        assert upcoming and all((t.hour, t.minute) == (3, 30) for t in upcoming)  # daily, armed
        await schedule.trigger()

        async def started():
            recent = (await schedule.describe()).info.recent_actions
            return recent[0].action.workflow_id if recent else None

        run = temporal_client.get_workflow_handle(
            await wait_until(started, what="engagement-retention to start a run"), result_type=RetentionResult
        )
        assert (await run.result()).deleted == 1
        assert await remaining(db) == {fresh}
    finally:
        for schedule_id in ids:
            await temporal_client.get_schedule_handle(schedule_id).delete()
