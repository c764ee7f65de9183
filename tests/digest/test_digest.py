"""Digests on the time-skipping server: an hourly-digest preference and the hourly rate cap both
turn several notifications into one message at the top of the hour, with their queue rows settled."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, time, timedelta, timezone

import pytest
from sqlalchemy import select

from notiflow.client import NotificationClient
from notiflow.contracts import Frequency
from notiflow.models import NotificationPreferenceRow, NotificationQueueRow, TrackedLinkRow
from tests.factories import ASSIGNEE, DIRECTORY, REPORTER, issue_dict, ref
from tests.time_skipping import add_users, event_at, mails_of_type, save_history, skip_to, wait_closed, wait_until
from workers.main import build_worker
from workflows.digest.rules import next_digest_at


async def away_from_the_hour(env) -> datetime:
    """Now, but not within five minutes of a full hour (so every item lands in the same digest)."""
    now = await env.get_current_time()
    next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if next_hour - now < timedelta(minutes=5):
        await skip_to(env, next_hour + timedelta(minutes=1))
    return await env.get_current_time()


async def comment_on(nc: NotificationClient, issue: dict, when: datetime, body: str) -> None:
    event = event_at(
        "ISSUE_COMMENT_ADDED", issue, when, actor=ASSIGNEE, comment={"body": body, "author": ref(ASSIGNEE)}
    )
    await wait_closed(nc.temporal.get_workflow_handle(await nc.publish(event)))


async def reporter_rows(db, notification_type: str, channel: str = "EMAIL") -> list[NotificationQueueRow]:
    async with db() as session:
        return list(
            (
                await session.execute(
                    select(NotificationQueueRow)
                    .where(
                        NotificationQueueRow.recipient_id == REPORTER.id,
                        NotificationQueueRow.notification_type == notification_type,
                        NotificationQueueRow.delivery_method == channel,
                    )
                    .order_by(NotificationQueueRow.created_at)
                )
            ).scalars()
        )


async def digest_rows(db, channel: str = "EMAIL") -> list[NotificationQueueRow]:
    async def sent():
        rows = await reporter_rows(db, "DIGEST", channel)
        return rows if rows and all(r.status == "SENT" for r in rows) else None

    return await wait_until(sent, what=f"the {channel} digest")


def listed(mail) -> list[str]:
    return [line for line in mail.part("plain").splitlines() if line.startswith("- ")]


@pytest.fixture
async def hourly_reporter(db):
    """The directory, with the reporter taking comment mails as an hourly digest."""
    await add_users(db, DIRECTORY)
    async with db.begin() as session:
        session.add(
            NotificationPreferenceRow(
                user_id=REPORTER.id,
                notification_type="ISSUE_COMMENT_ADDED",
                delivery_method="EMAIL",
                frequency="HOURLY",
            )
        )


async def test_five_comments_for_an_hourly_digest_user_make_one_digest_at_the_hour(
    time_env, ts_worker, settings, db, smtp, hourly_reporter
):
    nc = NotificationClient(time_env.client, settings)
    now = await away_from_the_hour(time_env)
    hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)  # the reporter's zone is UTC+3
    printer = issue_dict(priority="LOW", assignee=ref(ASSIGNEE), created_at=now.isoformat())
    network = issue_dict(
        priority="MEDIUM", title="Branch office offline", assignee=ref(ASSIGNEE), created_at=now.isoformat()
    )
    for n, issue in enumerate([printer, printer, printer, network, network]):
        await comment_on(nc, issue, now + timedelta(seconds=n), f"Update {n}")
    resolved = event_at("ISSUE_RESOLVED", network | {"status": "RESOLVED"}, now + timedelta(seconds=10), actor=ASSIGNEE)
    await wait_closed(nc.temporal.get_workflow_handle(await nc.publish(resolved)))

    items = await reporter_rows(db, "ISSUE_COMMENT_ADDED")
    assert [(r.status, r.scheduled_at, r.context_data["digest"]) for r in items] == [("PENDING", hour, "HOURLY")] * 5
    assert [r.status for r in await reporter_rows(db, "ISSUE_COMMENT_ADDED", "IN_APP")] == ["SENT"] * 5  # immediate
    await skip_to(time_env, hour - timedelta(minutes=1))
    await asyncio.sleep(0.5)
    assert await mails_of_type(db, smtp, "DIGEST") == []
    assert len(smtp.sink.to(REPORTER.email)) == 1  # only the resolution, which is not in the digest

    await skip_to(time_env, hour + timedelta(minutes=1))
    (digest,) = await digest_rows(db)
    (mail,) = await mails_of_type(db, smtp, "DIGEST")
    assert mail.rcpt_tos == [REPORTER.email] and mail.subject == "Your hourly digest: 5 notifications"
    entries = listed(mail)
    assert len(entries) == 5
    assert sum(network["id"] in e and e.startswith("- Resolved") for e in entries) == 2  # resolved before it went out
    assert sum(printer["id"] in e and not e.startswith("- Resolved") for e in entries) == 3
    items = await reporter_rows(db, "ISSUE_COMMENT_ADDED")
    assert {(r.status, r.provider_response, r.sent_at) for r in items} == {
        ("SENT", f"in digest {digest.id}", digest.sent_at)
    }
    # each item's link is wrapped (GET /r/{code}), its code on the item's own row: a click counts there
    codes = re.findall(r"/r/([A-Za-z0-9_-]{16,})", mail.part("plain"))
    async with db() as session:
        targets = [await session.get(TrackedLinkRow, code) for code in codes]
    open_items = {r.id: r for r in items if r.issue_id == printer["id"]}  # resolved ones are listed without a link
    assert len(codes) == 3 and {t.queue_id for t in targets if t} == set(open_items)
    assert all(t and t.target == open_items[t.queue_id].context_data["link"] for t in targets)
    assert "/admin/issues/" not in mail.part("plain")

    handle = time_env.client.get_workflow_handle(f"digest/{REPORTER.id}")
    await wait_closed(handle)  # nothing left: the run ends; the next item starts a new one
    await save_history(handle, "digest_hourly")


async def test_over_the_hourly_cap_the_rest_goes_to_an_hourly_digest(time_env, settings, db, smtp):
    await add_users(db, DIRECTORY)
    capped = settings.model_copy(update={"max_per_hour": 3})
    nc = NotificationClient(time_env.client, capped)
    async with build_worker(time_env.client, capped):
        now = await away_from_the_hour(time_env)
        hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        issue = issue_dict(priority="LOW", assignee=ref(ASSIGNEE), created_at=now.isoformat())
        for n in range(5):
            await comment_on(nc, issue, now + timedelta(seconds=n), f"Update {n}")
        for channel in ("EMAIL", "IN_APP"):
            rows = await reporter_rows(db, "ISSUE_COMMENT_ADDED", channel)
            assert [(r.status, (r.context_data or {}).get("digest")) for r in rows] == [("SENT", None)] * 3 + [
                ("PENDING", "HOURLY")
            ] * 2
        assert len(smtp.sink.to(REPORTER.email)) == 3

        await skip_to(time_env, hour + timedelta(minutes=1))
        (email_digest,) = await digest_rows(db, "EMAIL")
        (in_app_digest,) = await digest_rows(db, "IN_APP")
        (mail,) = await mails_of_type(db, smtp, "DIGEST")
        assert len(listed(mail)) == 2
        for channel, digest in (("EMAIL", email_digest), ("IN_APP", in_app_digest)):
            capped_rows = (await reporter_rows(db, "ISSUE_COMMENT_ADDED", channel))[3:]
            assert {(r.status, r.provider_response) for r in capped_rows} == {("SENT", f"in digest {digest.id}")}


def test_next_digest_time_follows_the_zone_the_digest_hour_and_quiet_hours():
    at = datetime(2026, 11, 25, 9, 10, tzinfo=timezone.utc)
    assert next_digest_at(Frequency.HOURLY, at, "Asia/Kolkata") == at.replace(minute=30)  # 14:40 IST → 15:00 IST
    assert next_digest_at(Frequency.DAILY, at, "Indian/Antananarivo", digest_hour=8) == datetime(
        2026, 11, 26, 5, 0, tzinfo=timezone.utc
    )  # 12:10 local → tomorrow 08:00 local
    assert next_digest_at(Frequency.DAILY, at, "Indian/Antananarivo", digest_hour=18) == datetime(
        2026, 11, 25, 15, 0, tzinfo=timezone.utc
    )
    late = datetime(2026, 11, 25, 18, 30, tzinfo=timezone.utc)  # 21:30 local; 22:00 falls in quiet hours
    assert next_digest_at(
        Frequency.HOURLY, late, "Indian/Antananarivo", quiet_start=time(22), quiet_end=time(7)
    ) == datetime(2026, 11, 26, 4, 0, tzinfo=timezone.utc)


async def test_a_waiting_digest_survives_a_worker_restart(time_env, settings, db, smtp, hourly_reporter):
    nc = NotificationClient(time_env.client, settings)
    now = await away_from_the_hour(time_env)
    hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    issue = issue_dict(priority="LOW", assignee=ref(ASSIGNEE), created_at=now.isoformat())
    async with build_worker(time_env.client, settings, max_cached_workflows=0):  # see test_sla: no sticky queue left
        for n in range(2):
            await comment_on(nc, issue, now + timedelta(seconds=n), f"Update {n}")
    async with build_worker(time_env.client, settings):
        await comment_on(nc, issue, now + timedelta(seconds=2), "Update 2")
        await skip_to(time_env, hour + timedelta(minutes=1))
        await digest_rows(db)
    (mail,) = await mails_of_type(db, smtp, "DIGEST")
    assert len(listed(mail)) == 3  # the items the first worker collected are still there
