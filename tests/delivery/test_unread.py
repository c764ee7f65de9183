"""Escalation on unread, on the time-skipping server through the real pipeline: unread at the deadline →
one more message on the rule's channel, once (a worker restart during the wait changes nothing); read a
minute before → nothing; the issue resolved meanwhile → nothing; quiet hours hold a non-critical one."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from notiflow.client import NotificationClient
from notiflow.keys import unread_workflow_id
from notiflow.models import InAppNotificationRow, NotificationQueueRow, ReadEscalationRow
from tests.factories import ADMIN_EN, ASSIGNEE, DIRECTORY, issue_dict, ref
from tests.time_skipping import add_users, event_at, mails_of_type, skip_to, wait_closed, wait_until
from workers.main import build_worker

RULE_MINUTES = 60


async def arm_rule(db, notification_type: str = "ISSUE_ASSIGNED", channel: str = "EMAIL") -> None:
    async with db.begin() as session:
        await session.execute(
            update(ReadEscalationRow)
            .where(ReadEscalationRow.notification_type == notification_type)
            .values(enabled=True, after_minutes=RULE_MINUTES, channel=channel)
        )


async def assign(time_env, settings, db, *, assignee=ASSIGNEE) -> tuple[str, dict, datetime]:
    """ISSUE_ASSIGNED to the assignee, delivered; returns the unread deadline's workflow id, the issue, and now."""
    now = await time_env.get_current_time()
    issue = issue_dict(priority="LOW", assignee=ref(assignee), created_at=now.isoformat())
    event = event_at("ISSUE_ASSIGNED", issue, now, actor=ADMIN_EN)
    nc = NotificationClient(time_env.client, settings)
    await wait_closed(nc.temporal.get_workflow_handle(await nc.publish(event)))
    return unread_workflow_id(event.event_id, "ISSUE_ASSIGNED"), issue, now


async def escalated_rows(db, issue_id: str) -> list[NotificationQueueRow]:
    async with db() as session:
        rows = await session.scalars(
            select(NotificationQueueRow).where(
                NotificationQueueRow.issue_id == issue_id,
                NotificationQueueRow.context_data["escalated_from"].astext.is_not(None),
            )
        )
        return list(rows)


async def test_unread_at_the_deadline_escalates_once_across_a_worker_restart(time_env, settings, db, smtp):
    await add_users(db, DIRECTORY)
    await arm_rule(db)
    # Worker A plans, delivers and arms the deadline, then stops (no workflow cache: no sticky queue left behind).
    async with build_worker(time_env.client, settings, max_cached_workflows=0):
        watch_id, issue, now = await assign(time_env, settings, db)
        watch = time_env.client.get_workflow_handle(watch_id)
        await wait_until(lambda: watch.describe(), what="the read deadline to start")
    skipping = asyncio.create_task(skip_to(time_env, now + timedelta(minutes=RULE_MINUTES + 1)))
    await asyncio.sleep(1.5)
    assert not skipping.done()  # the deadline fired; the server's clock waits for a worker to take the task
    assert await escalated_rows(db, issue["id"]) == []
    async with build_worker(time_env.client, settings):  # worker B: replays the wait, asks, escalates
        await skipping
        await wait_closed(watch)
        rows = await escalated_rows(db, issue["id"])
        assert [(r.recipient_id, r.delivery_method, r.status) for r in rows] == [(ASSIGNEE.id, "EMAIL", "SENT")]
        assert rows[0].context_data["escalated_from"] == f"unread after {RULE_MINUTES} min"
        assert rows[0].decision["escalated_from"] == f"unread after {RULE_MINUTES} min"
        await skip_to(time_env, now + timedelta(minutes=3 * RULE_MINUTES))
    mails = [m for m in await mails_of_type(db, smtp, "ISSUE_ASSIGNED") if m.rcpt_tos == [ASSIGNEE.email]]
    assert len(mails) == 2  # the assignment itself, then the one escalation
    assert len(await escalated_rows(db, issue["id"])) == 1


async def test_read_a_minute_before_the_deadline_sends_nothing_more(time_env, settings, db, smtp, ts_worker):
    await add_users(db, DIRECTORY)
    await arm_rule(db)
    watch_id, issue, now = await assign(time_env, settings, db)
    watch = time_env.client.get_workflow_handle(watch_id)
    await wait_until(lambda: watch.describe(), what="the read deadline to start")
    await skip_to(time_env, now + timedelta(minutes=RULE_MINUTES - 1))
    async with db.begin() as session:
        await session.execute(
            update(InAppNotificationRow)
            .where(InAppNotificationRow.user_id == ASSIGNEE.id, InAppNotificationRow.issue_id == issue["id"])
            .values(read_at=now + timedelta(minutes=RULE_MINUTES - 1))
        )
    await skip_to(time_env, now + timedelta(minutes=RULE_MINUTES + 1))
    await wait_closed(watch)
    assert await escalated_rows(db, issue["id"]) == []
    assert await watch.result() is None  # nothing sent: everyone read it in time


async def test_an_issue_resolved_during_the_wait_cancels_the_escalation(time_env, settings, db, smtp, ts_worker):
    await add_users(db, DIRECTORY)
    await arm_rule(db)
    watch_id, issue, now = await assign(time_env, settings, db)
    watch = time_env.client.get_workflow_handle(watch_id)
    await wait_until(lambda: watch.describe(), what="the read deadline to start")
    await skip_to(time_env, now + timedelta(minutes=20))
    resolved = issue | {"status": "RESOLVED"}
    nc = NotificationClient(time_env.client, settings)
    later = now + timedelta(minutes=20)
    await wait_closed(
        nc.temporal.get_workflow_handle(await nc.publish(event_at("ISSUE_RESOLVED", resolved, later, actor=ADMIN_EN)))
    )
    await skip_to(time_env, now + timedelta(minutes=RULE_MINUTES + 1))
    await wait_closed(watch)
    assert await escalated_rows(db, issue["id"]) == []


async def test_quiet_hours_hold_a_non_critical_escalation_until_they_end(time_env, settings, db, smtp, ts_worker):
    now = await time_env.get_current_time()
    zone = ZoneInfo(settings.timezone)
    deadline = (now + timedelta(minutes=RULE_MINUTES)).astimezone(zone)
    quiet_start = f"{deadline - timedelta(minutes=10):%H:%M}"
    quiet_end = f"{deadline + timedelta(hours=2):%H:%M}"
    sleeper = ASSIGNEE.model_copy(update={"quiet_hours_start": quiet_start, "quiet_hours_end": quiet_end})
    await add_users(db, [u for u in DIRECTORY if u.id != ASSIGNEE.id] + [sleeper])
    await arm_rule(db)
    watch_id, issue, now = await assign(time_env, settings, db, assignee=sleeper)
    watch = time_env.client.get_workflow_handle(watch_id)
    await wait_until(lambda: watch.describe(), what="the read deadline to start")
    await skip_to(time_env, now + timedelta(minutes=RULE_MINUTES + 1))

    async def held():
        rows = await escalated_rows(db, issue["id"])
        return rows if rows and rows[0].status == "PENDING" else None

    (row,) = await wait_until(held, what="the escalation to be planned and held")
    window_end = (deadline + timedelta(hours=2)).replace(second=0, microsecond=0)
    assert datetime.fromisoformat(row.decision["held_until"]) == window_end
    assert row.decision["escalated_from"] == f"unread after {RULE_MINUTES} min"
    await skip_to(time_env, window_end + timedelta(minutes=1))
    await wait_closed(watch)
    (row,) = await escalated_rows(db, issue["id"])
    assert row.status == "SENT"  # once the window ended (the worker's sent_at is wall-clock, not the server's)
