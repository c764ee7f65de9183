"""Summary schedules and SummaryWorkflow on the real dev server: idempotent sync, a triggered daily
summary that matches SQL over the seeded issues, and a backfill that reports its own day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import distinct, func, select
from temporalio.client import ScheduleActionResult, ScheduleBackfill, ScheduleOverlapPolicy

from notiflow.models import IssueEventRow, IssueRow, NotificationPreferenceRow
from notiflow.templates.samples import sample_context
from programs.schedules import sync_schedules
from tests.factories import ADMIN_EN, ADMIN_FR, DIRECTORY
from tests.time_skipping import add_users, mails_of_type, save_history, wait_until
from workflows.summary.workflows import SummaryWorkflow


@pytest.fixture
async def schedules(temporal_client, settings):
    """The two summary schedules on the shared dev server, removed afterwards."""
    synced = await sync_schedules(temporal_client, settings)
    yield synced
    for schedule_id in synced:  # the summaries and engagement-retention
        await temporal_client.get_schedule_handle(schedule_id).delete()


async def listed_schedule_ids(client) -> list[str]:
    return sorted([s.id async for s in await client.list_schedules() if s.id.startswith("summary-")])


async def test_sync_twice_leaves_two_schedules_updated_in_place(temporal_client, settings, schedules):
    paris = settings.model_copy(update={"timezone": "Europe/Paris"})
    daily = temporal_client.get_schedule_handle("summary-daily")
    await daily.pause(note="paused by an operator")
    assert await sync_schedules(temporal_client, paris) == schedules
    assert schedules == ["summary-daily", "summary-weekly", "engagement-retention"]

    async def both_listed():
        return await listed_schedule_ids(temporal_client) == ["summary-daily", "summary-weekly"]

    await wait_until(both_listed, what="the schedules to be listed")
    for schedule_id, weekday in (("summary-daily", None), ("summary-weekly", 0)):
        description = await temporal_client.get_schedule_handle(schedule_id).describe()
        assert description.schedule.spec.time_zone_name == "Europe/Paris"
        assert description.schedule.action.task_queue == settings.task_queue
        upcoming = [t.astimezone(ZoneInfo("Europe/Paris")) for t in description.info.next_action_times]
        assert upcoming and all((t.hour, t.minute) == (8, 0) for t in upcoming)
        assert weekday is None or all(t.weekday() == weekday for t in upcoming)
    assert (await daily.describe()).schedule.state.paused  # the operator's pause survives a sync


async def seed_issues(db, now: datetime) -> dict[str, str]:
    """Issues around the last 24 hours; returns name → issue id."""

    def at(hours: float) -> datetime:
        return now - timedelta(hours=hours)

    specs = {  # name: (created h ago, priority, category, auto, resolved h ago)
        "old_open_high": (30, "HIGH", "NETWORK", False, None),
        "new_critical": (10, "CRITICAL", "SOFTWARE", False, None),
        "new_auto_low": (5, "LOW", "SYSTEM", True, None),
        "new_resolved": (20, "MEDIUM", "HARDWARE", False, 2),
        "old_resolved_today": (50, "HIGH", "HARDWARE", False, 3),
        "resolved_long_ago": (40, "LOW", "SOFTWARE", False, 30),
        "new_auto_high": (3, "HIGH", "HARDWARE", True, None),
    }
    ids = {}
    async with db.begin() as session:
        for n, (name, (created, priority, category, auto, resolved)) in enumerate(specs.items()):
            issue_id = ids[name] = f"ISS-S{n}"
            session.add(
                IssueRow(
                    id=issue_id,
                    title=name.replace("_", " "),
                    category=category,
                    priority=priority,
                    status="RESOLVED" if resolved else "OPEN",
                    is_auto_reported=auto,
                    created_at=at(created),
                    resolved_at=at(resolved) if resolved else None,
                    last_event_at=at(resolved or created),
                )
            )
            session.add(
                IssueEventRow(
                    event_id=f"seed-{issue_id}-created",
                    type="ISSUE_CREATED",
                    issue_id=issue_id,
                    occurred_at=at(created),
                    payload={},
                )
            )
            if resolved:
                session.add(
                    IssueEventRow(
                        event_id=f"seed-{issue_id}-resolved",
                        type="ISSUE_RESOLVED",
                        issue_id=issue_id,
                        occurred_at=at(resolved),
                        payload={},
                    )
                )
    return ids


async def independent_counts(db, start: datetime, end: datetime) -> dict:
    """The same figures, asked of the database in the plainest way."""
    async with db() as session:
        new = select(IssueRow).where(IssueRow.created_at >= start, IssueRow.created_at < end).subquery()
        resolved = (
            await session.execute(
                select(func.count(distinct(IssueEventRow.issue_id))).where(
                    IssueEventRow.type == "ISSUE_RESOLVED",
                    IssueEventRow.occurred_at >= start,
                    IssueEventRow.occurred_at < end,
                )
            )
        ).scalar_one()
        open_now = (
            await session.execute(
                select(IssueRow.priority, func.count())
                .where(IssueRow.status == "OPEN", IssueRow.created_at < end)
                .group_by(IssueRow.priority)
            )
        ).all()
        return {
            "new": (await session.execute(select(func.count()).select_from(new))).scalar_one(),
            "auto": (
                await session.execute(select(func.count()).select_from(new).where(new.c.is_auto_reported))
            ).scalar_one(),
            "resolved": resolved,
            "open": {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0} | dict(open_now),
        }


async def started_run(temporal_client, schedule_id: str, scheduled_at: datetime | None = None):
    """The run the schedule started (at ``scheduled_at``, if given)."""
    handle = temporal_client.get_schedule_handle(schedule_id)

    async def action() -> ScheduleActionResult | None:
        recent = (await handle.describe()).info.recent_actions
        return next((a for a in recent if scheduled_at is None or a.scheduled_at == scheduled_at), None)

    started = await wait_until(action, what=f"{schedule_id} to start a run")
    return temporal_client.get_workflow_handle_for(SummaryWorkflow.run, started.action.workflow_id)


async def test_triggered_daily_summary_matches_the_database_and_respects_preferences(
    temporal_client, settings, worker, db, smtp, schedules
):
    await add_users(db, DIRECTORY)
    async with db.begin() as session:  # this admin switched the daily summary off
        session.add_all(
            [
                NotificationPreferenceRow(
                    user_id=ADMIN_FR.id,
                    notification_type="DAILY_ISSUE_SUMMARY",
                    delivery_method=channel,
                    is_enabled=False,
                )
                for channel in ("EMAIL", "IN_APP")
            ]
        )
    now = datetime.now(timezone.utc)
    ids = await seed_issues(db, now)

    await temporal_client.get_schedule_handle("summary-daily").trigger()
    run = await started_run(temporal_client, "summary-daily")
    report = (await run.result()).report
    assert abs(report.period_end - now) < timedelta(minutes=1)  # a manual trigger ends the period now
    assert report.period_end - report.period_start == timedelta(days=1)

    expected = await independent_counts(db, report.period_start, report.period_end)
    assert (report.new_count, report.auto_reported_count, report.resolved_count, report.open_by_priority) == (
        expected["new"],
        expected["auto"],
        expected["resolved"],
        expected["open"],
    )
    assert (report.new_count, report.auto_reported_count, report.resolved_count) == (4, 2, 2)  # not trivially zero
    assert [o.id for o in report.overdue] == [ids["old_open_high"], ids["new_critical"]]
    assert [round(o.age_hours) for o in report.overdue] == [30, 10]
    assert (report.mean_hours_to_resolve, report.median_hours_to_resolve) == (32.5, 32.5)  # 18 h and 47 h
    assert [(c.category, c.count) for c in report.top_categories] == [("HARDWARE", 2), ("SOFTWARE", 1), ("SYSTEM", 1)]

    sample = sample_context("DAILY_ISSUE_SUMMARY")["data"]  # the shape the templates are written against
    data = report.model_dump(mode="json")
    assert set(data) == set(sample) and set(data["overdue"][0]) == set(sample["overdue"][0])
    assert set(data["top_categories"][0]) == set(sample["top_categories"][0])

    mails = await mails_of_type(db, smtp, "DAILY_ISSUE_SUMMARY")
    assert [m.rcpt_tos for m in mails] == [[ADMIN_EN.email]]  # not the admin who opted out
    assert "4 new, 2 resolved" in mails[0].subject
    await save_history(run, "summary_daily")


async def test_backfill_reports_its_own_day(temporal_client, settings, worker, db, schedules):
    await add_users(db, DIRECTORY)
    zone = ZoneInfo(settings.timezone)
    eight = datetime.now(zone).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=2)
    await temporal_client.get_schedule_handle("summary-daily").backfill(
        ScheduleBackfill(
            start_at=eight - timedelta(minutes=1),
            end_at=eight + timedelta(minutes=1),
            overlap=ScheduleOverlapPolicy.ALLOW_ALL,
        )
    )
    result = await (await started_run(temporal_client, "summary-daily", scheduled_at=eight)).result()
    assert result.report.period_end == eight and result.report.period_start == eight - timedelta(days=1)
