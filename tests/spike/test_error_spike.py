"""ErrorSpikeWorkflow on the time-skipping server, fed by auto-reported issues through the real pipeline:
a burst raises one alarm to the on-call admin, a steady trickle raises none."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from notiflow.client import NotificationClient
from notiflow.models import NotificationQueueRow
from notiflow.templates.samples import sample_context
from tests.factories import ADMIN_FR, issue_dict
from tests.time_skipping import add_users, event_at, mails_of_type, save_history, skip_to, wait_closed, wait_until
from workers.main import build_worker
from workflows.spike.rules import minute_of, read_spike
from workflows.spike.types import SpikeConfig
from workflows.spike.workflows import ErrorSpikeWorkflow

BOT = ADMIN_FR.model_copy(
    update={"id": "u-error-bot", "name": "Error reporter", "email": None, "roles": [], "is_on_call": False}
)


@pytest.fixture
async def nc(time_env, settings, ts_worker, db) -> NotificationClient:
    await add_users(db, [ADMIN_FR])  # the only admin, on call
    return NotificationClient(time_env.client, settings)


async def report_errors(nc: NotificationClient, env, count: int) -> None:
    """``count`` auto-reported issues now, each through IssueEventWorkflow."""
    now = await env.get_current_time()
    events = [
        event_at(
            "ISSUE_CREATED",
            issue_dict(
                priority="MEDIUM", category="SYSTEM", is_auto_reported=True, reporter=None, created_at=now.isoformat()
            ),
            now,
            actor=BOT,
        )
        for _ in range(count)
    ]
    handles = [nc.temporal.get_workflow_handle(await nc.publish(e)) for e in events]
    await asyncio.gather(*(wait_closed(h, timeout=60) for h in handles))


async def spike_rows(db) -> int:
    """Alarm rows (not counting the escalation on unread that follows an unread alarm: tests/delivery/test_unread)."""
    async with db() as session:
        return (
            await session.execute(
                select(func.count()).where(
                    NotificationQueueRow.notification_type == "SYSTEM_ERROR_SPIKE",
                    NotificationQueueRow.context_data["escalated_from"].astext.is_(None),
                )
            )
        ).scalar_one()


async def test_thirty_errors_in_three_minutes_raise_one_alarm(nc, time_env, db, smtp):
    for minute in range(3):
        await report_errors(nc, time_env, 10)
        if minute < 2:
            await skip_to(time_env, await time_env.get_current_time() + timedelta(minutes=1))
    detector = time_env.client.get_workflow_handle_for(ErrorSpikeWorkflow.run, "error-spike-detector")
    assert (await detector.query(ErrorSpikeWorkflow.reading)).recent_count == 30

    async def alarmed():
        return await spike_rows(db) == 2  # the on-call admin: EMAIL and IN_APP

    await wait_until(alarmed, what="the spike alarm")
    (mail,) = await mails_of_type(db, smtp, "SYSTEM_ERROR_SPIKE")
    assert mail.rcpt_tos == [ADMIN_FR.email]

    await skip_to(time_env, await time_env.get_current_time() + timedelta(minutes=40))  # cooldown, then calm
    await report_errors(nc, time_env, 1)
    await asyncio.sleep(0.5)
    assert await spike_rows(db) == 2
    await save_history(detector, "error_spike_alarm")
    await skip_to(time_env, await time_env.get_current_time() + timedelta(minutes=70))
    await wait_closed(detector)  # nothing left inside the baseline horizon: the run ends


async def test_a_steady_trickle_raises_none(nc, time_env, db):
    detector = time_env.client.get_workflow_handle_for(ErrorSpikeWorkflow.run, "error-spike-detector")
    for _ in range(12):
        await report_errors(nc, time_env, 1)
        await skip_to(time_env, await time_env.get_current_time() + timedelta(minutes=1))
    reading = await detector.query(ErrorSpikeWorkflow.reading)
    assert reading.recent_count <= 5 and not reading.is_spike
    assert await spike_rows(db) == 0


def test_the_alarm_level_is_the_larger_of_the_minimum_and_factor_times_baseline():
    now = datetime(2026, 11, 25, 9, 30, 20, tzinfo=timezone.utc)
    config = SpikeConfig(min_count=10, factor=3.0)
    baseline = {f"old-{m}": minute_of(now - timedelta(minutes=5 + m)) for m in range(60)}  # one a minute for an hour
    recent = {f"new-{n}": minute_of(now - timedelta(minutes=n % 5)) for n in range(15)}
    reading = read_spike(baseline | recent, config, now)
    assert (reading.baseline_per_minute, reading.alarm_above, reading.per_minute) == (1.0, 15.0, [3, 3, 3, 3, 3])
    assert not reading.is_spike and read_spike(baseline | recent | {"one-more": minute_of(now)}, config, now).is_spike
    assert read_spike(recent, config, now).is_spike  # no baseline: the minimum (10) applies
    assert set(reading.notification_data()) == set(sample_context("SYSTEM_ERROR_SPIKE")["data"])  # the templates' shape


async def test_counts_survive_a_worker_restart(time_env, settings, db, smtp):
    await add_users(db, [ADMIN_FR])
    nc = NotificationClient(time_env.client, settings)
    async with build_worker(time_env.client, settings, max_cached_workflows=0):  # see test_sla: no sticky queue left
        await report_errors(nc, time_env, 6)
    async with build_worker(time_env.client, settings):
        await report_errors(nc, time_env, 5)  # 11 in the window only if the first six were kept

        async def alarmed():
            return await spike_rows(db) == 2

        await wait_until(alarmed, what="the spike alarm")

        async def mailed():  # the alarm's rows are planned before its mail is out
            return await mails_of_type(db, smtp, "SYSTEM_ERROR_SPIKE")

        await wait_until(mailed, what="the spike alarm's mail")
        await asyncio.sleep(0.5)
    assert len(await mails_of_type(db, smtp, "SYSTEM_ERROR_SPIKE")) == 1
