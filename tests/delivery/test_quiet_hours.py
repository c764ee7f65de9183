"""Quiet hours (22:00–07:00 in the recipient's zone) on the time-skipping server: an ordinary
notification at 23:00 waits until 07:00, a critical one goes out at once; in a plan planned slice by slice, the
held rows go after every slice, when quiet hours end."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from notiflow.client import NotificationClient
from notiflow.contracts import User
from notiflow.models import NotificationQueueRow
from tests.conftest import running_worker
from tests.factories import ADMIN_EN, ASSIGNEE, REPORTER, issue_dict, ref
from tests.time_skipping import add_users, event_at, skip_to, wait_closed, wait_until
from workers.main import build_worker


def zone_where_it_is_23h(now: datetime) -> str:
    """A fixed-offset zone (Etc/GMT±N, UTC-12…UTC+14) in which ``now`` falls in the 23:00 hour."""
    offset = (23 - now.hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-3 is UTC+3


@pytest.fixture
async def sleeper(time_env, ts_worker, db) -> User:
    """The assignee, whose quiet hours 22:00–07:00 have just begun (it is 23:xx where they live)."""
    now = await time_env.get_current_time()
    user = ASSIGNEE.model_copy(
        update={"timezone": zone_where_it_is_23h(now), "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"}
    )
    await add_users(db, [ADMIN_EN, REPORTER, user])
    return user


async def assign(nc: NotificationClient, time_env, user: User, priority: str):
    now = await time_env.get_current_time()
    issue = issue_dict(priority=priority, assignee=ref(user), created_at=now.isoformat())
    event = event_at("ISSUE_ASSIGNED", issue, now, changes={"assignee": {"old": None, "new": user.id}})
    return nc.temporal.get_workflow_handle(await nc.publish(event)), event


async def test_ordinary_notification_at_23h_waits_for_7h(time_env, settings, db, smtp, sleeper):
    nc = NotificationClient(time_env.client, settings)
    handle, event = await assign(nc, time_env, sleeper, "LOW")
    local = event.occurred_at.astimezone(ZoneInfo(sleeper.timezone))
    assert local.hour == 23
    seven = datetime.combine(local.date() + timedelta(days=1), time(7), tzinfo=local.tzinfo)

    async def queued():
        async with db() as session:
            return (
                (
                    await session.execute(
                        select(NotificationQueueRow).where(NotificationQueueRow.event_id == event.event_id)
                    )
                )
                .scalars()
                .all()
            )

    rows = await wait_until(queued, what="the queue rows")
    await asyncio.sleep(1.0)
    assert {r.status for r in rows} == {"PENDING"} and smtp.sink.messages == []

    await skip_to(time_env, seven - timedelta(minutes=1))
    await asyncio.sleep(0.5)
    assert smtp.sink.messages == []
    await skip_to(time_env, seven + timedelta(minutes=1))
    (mail,) = await smtp.wait_for(1)
    assert mail.rcpt_tos == [sleeper.email]
    await wait_closed(handle)
    fired = [e for e in (await handle.fetch_history()).events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]
    (fired_at,) = [e.event_time.ToDatetime().replace(tzinfo=timezone.utc) for e in fired]
    assert abs(fired_at - seven) < timedelta(seconds=1)  # the durable sleep ended at 07:00 local


async def test_critical_notification_at_23h_goes_out_at_once(time_env, settings, db, smtp, sleeper):
    nc = NotificationClient(time_env.client, settings)
    handle, _ = await assign(nc, time_env, sleeper, "CRITICAL")
    (mail,) = await smtp.wait_for(1)
    assert mail.rcpt_tos == [sleeper.email]
    await wait_closed(handle)


async def test_the_quiet_hours_sleep_survives_a_worker_restart(time_env, settings, db, smtp):
    now = await time_env.get_current_time()
    user = ASSIGNEE.model_copy(
        update={"timezone": zone_where_it_is_23h(now), "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"}
    )
    await add_users(db, [ADMIN_EN, REPORTER, user])
    nc = NotificationClient(time_env.client, settings)
    async with build_worker(time_env.client, settings, max_cached_workflows=0):  # see test_sla: no sticky queue left
        handle, event = await assign(nc, time_env, user, "LOW")
        await wait_until(lambda: _has_timer(handle), what="the quiet-hours sleep")
    local = event.occurred_at.astimezone(ZoneInfo(user.timezone))
    seven = datetime.combine(local.date() + timedelta(days=1), time(7), tzinfo=local.tzinfo)
    async with build_worker(time_env.client, settings):
        await skip_to(time_env, seven + timedelta(minutes=1))
        await wait_closed(handle)
    assert [m.rcpt_tos for m in smtp.sink.messages] == [[user.email]]


async def _has_timer(handle) -> bool:
    history = await handle.fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)


async def test_a_plan_planned_in_slices_sends_the_held_rows_once_quiet_hours_end(time_env, settings, db, smtp):
    """Slices of three people: the awake admins hear at once, slice by slice; the three asleep (one in each of
    three slices) are read last, by the held rows' page, and hear at 07:00 — each person once."""
    now = await time_env.get_current_time()
    zone = zone_where_it_is_23h(now)
    asleep = {1, 4, 6}
    admins = [
        User(
            id=f"u-slice-{i}",
            name=f"Admin {i}",
            email=f"slice{i}@example.mg",
            locale="en",
            roles=["admin"],
            **({"timezone": zone, "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"} if i in asleep else {}),
        )
        for i in range(8)
    ]
    await add_users(db, [*admins, ADMIN_EN, REPORTER])
    sliced = settings.model_copy(update={"delivery_page_size": 3})
    async with running_worker(time_env.client, sliced):
        nc = NotificationClient(time_env.client, sliced)
        event = event_at("ISSUE_CREATED", issue_dict(priority="LOW", created_at=now.isoformat()), now)
        handle = nc.temporal.get_workflow_handle(await nc.publish(event))
        awake = await smtp.wait_for(len(admins) - len(asleep))
        await asyncio.sleep(1.0)
        assert sorted(m.rcpt_tos[0] for m in smtp.sink.messages) == sorted(m.rcpt_tos[0] for m in awake)
        assert {m.rcpt_tos[0] for m in awake} == {a.email for i, a in enumerate(admins) if i not in asleep}

        local = now.astimezone(ZoneInfo(zone))
        seven = datetime.combine(local.date() + timedelta(days=1), time(7), tzinfo=local.tzinfo)
        await skip_to(time_env, seven + timedelta(minutes=1))
        mails = await smtp.wait_for(len(admins))
        await wait_closed(handle)
        pages = await time_env.client.get_workflow_handle(f"pages/{event.event_id}").describe()

    assert pages.workflow_type == "DeliverPagesWorkflow"
    assert sorted(m.rcpt_tos[0] for m in mails) == sorted(a.email for a in admins)  # each once
    async with db() as session:
        rows = (
            (await session.execute(select(NotificationQueueRow).where(NotificationQueueRow.event_id == event.event_id)))
            .scalars()
            .all()
        )
    assert len(rows) == 2 * len(admins) and {r.status for r in rows} == {"SENT"}
