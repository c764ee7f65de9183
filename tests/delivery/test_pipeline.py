"""IssueEventWorkflow end to end: real Temporal dev server, real PostgreSQL, real SMTP server over TCP."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.service import RPCError

from notiflow.client import NotificationClient
from notiflow.contracts import InvalidEvent
from notiflow.models import InAppNotificationRow, IssueEventRow, IssueRow, NotificationLogRow, NotificationQueueRow
from notiflow.runs import DeliveryOutcome
from tests.conftest import running_worker
from tests.factories import (
    ADMIN_EN,
    ADMIN_FR,
    ASSIGNEE,
    DIRECTORY,
    REPORTER,
    event,
    event_dict,
    issue_dict,
    ref,
    shifted,
)


def _nested(depth: int) -> dict:
    root: dict = {}
    level = root
    for _ in range(depth - 1):
        level["a"] = {}
        level = level["a"]
    return root


async def _publish_and_wait(nc: NotificationClient, evt) -> DeliveryOutcome:
    workflow_id = await nc.publish(evt)
    return await nc.temporal.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()


async def _queue(db, **where) -> list[NotificationQueueRow]:
    async with db() as session:
        query = select(NotificationQueueRow)
        for column, value in where.items():
            query = query.where(getattr(NotificationQueueRow, column) == value)
        return list((await session.execute(query)).scalars())


@pytest.fixture
async def nc(temporal_client, settings, worker) -> NotificationClient:
    client = NotificationClient(temporal_client, settings)
    assert await client.sync_users(DIRECTORY) == len(DIRECTORY)
    return client


async def test_created_high_issue_mails_every_admin_in_their_language(nc, smtp, db):
    evt = event("ISSUE_CREATED")
    outcome = await _publish_and_wait(nc, evt)

    assert outcome.channels["EMAIL"].sent == 2 and outcome.channels["IN_APP"].sent == 2
    mails = await smtp.wait_for(2)
    by_rcpt = {m.rcpt_tos[0]: m for m in mails}
    assert set(by_rcpt) == {ADMIN_EN.email, ADMIN_FR.email}  # not the reporter: they acted
    english, french = by_rcpt[ADMIN_EN.email], by_rcpt[ADMIN_FR.email]
    assert "HIGH" in english.subject and "HAUTE" in french.subject
    for mail in (english, french):
        assert "Licence card printer offline" in mail.subject
        assert f"{nc.settings.public_api_url}/r/" in mail.part("plain")  # the issue link, wrapped (engagement)
        assert evt.issue.id in mail.part("html")
        assert mail.message["Message-ID"].endswith("@test.local>")
        assert mail.message["References"] == f"<issue-{evt.issue.id}@test.local>"
        assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert english.part("plain") != french.part("plain")

    rows = await _queue(db, event_id=evt.event_id)
    assert {(r.recipient_id, r.delivery_method, r.status, r.notification_type) for r in rows} == {
        (u.id, channel, "SENT", "HIGH_PRIORITY_ISSUE") for u in (ADMIN_EN, ADMIN_FR) for channel in ("EMAIL", "IN_APP")
    }
    async with db() as session:
        inbox = (await session.execute(select(InAppNotificationRow))).scalars().all()
        assert sorted(i.user_id for i in inbox) == sorted([ADMIN_EN.id, ADMIN_FR.id])
        assert all(i.issue_id == evt.issue.id and i.read_at is None for i in inbox)
        stored = (
            await session.execute(select(IssueEventRow).where(IssueEventRow.event_id == evt.event_id))
        ).scalar_one()
        assert stored.workflow_id == f"event/{evt.event_id}"
        assert (await session.get(IssueRow, evt.issue.id)).priority == "HIGH"


@pytest.mark.parametrize(
    "offset, overdue", [(timedelta(days=-365), True), (timedelta(days=365), False)], ids=["a-year-back", "a-year-ahead"]
)
async def test_the_suite_does_not_depend_on_the_calendar(offset, overdue, nc, smtp, db):
    """Events far from today: the event's own mails are the same; only a year-old HIGH issue is overdue.

    This is the check that would have caught fixed dates in the factories: with a
    stale date the SLA escalates at once and tests counting mails see one more.
    """
    with shifted(offset):
        evt = event("ISSUE_CREATED")
    outcome = await _publish_and_wait(nc, evt)
    assert outcome.channels["EMAIL"].sent == 2
    created = await _queue(db, event_id=evt.event_id, delivery_method="EMAIL")
    assert {r.recipient_id for r in created} == {ADMIN_EN.id, ADMIN_FR.id}
    if overdue:  # every tier is past due: the SLA sends only the latest one at once, to the on-call admin
        await smtp.wait_for(3)
        escalations = await _queue(
            db, issue_id=evt.issue.id, notification_type="ISSUE_OVERDUE", delivery_method="EMAIL"
        )
        assert [r.recipient_id for r in escalations] == [ADMIN_FR.id]
    else:
        await asyncio.sleep(1.0)
        assert len(smtp.sink.messages) == 2
        assert await _queue(db, issue_id=evt.issue.id, notification_type="ISSUE_OVERDUE") == []


async def test_recipients_follow_the_event_type(nc, smtp, db):
    issue = issue_dict(assignee=ref(ASSIGNEE), status="IN_PROGRESS", priority="LOW")
    commented = event(
        "ISSUE_COMMENT_ADDED",
        issue=issue,
        actor=ASSIGNEE,
        comment={"body": "Replacing the ribbon.", "author": ref(ASSIGNEE)},
    )
    await _publish_and_wait(nc, commented)
    rows = await _queue(db, event_id=commented.event_id, delivery_method="EMAIL")
    assert {r.recipient_id for r in rows} == {REPORTER.id}  # reporter; the assignee wrote it

    resolved = event(
        "ISSUE_RESOLVED",
        issue=issue | {"status": "RESOLVED", "resolution_notes": "Ribbon replaced"},
        actor=ADMIN_EN,
        minutes=5,
    )
    await _publish_and_wait(nc, resolved)
    rows = await _queue(db, event_id=resolved.event_id, delivery_method="EMAIL")
    assert {r.recipient_id for r in rows} == {REPORTER.id, ASSIGNEE.id}
    assert all(r.status == "SENT" for r in rows)


async def test_same_event_twice_sends_each_mail_once(nc, smtp, db, temporal_client):
    evt = event("ISSUE_CREATED")
    first = await nc.publish(evt)
    again = await nc.publish(evt)  # while the first may still run
    assert first == again == f"event/{evt.event_id}"
    await temporal_client.get_workflow_handle(first).result()
    assert await nc.publish(evt) == first  # after it finished: same id, nothing new
    await asyncio.sleep(0.5)
    # Even a second run of the pipeline over the same event (e.g. after history retention) sends nothing.
    from workflows.delivery.event import IssueEventWorkflow

    rerun = await temporal_client.execute_workflow(
        IssueEventWorkflow.run,
        evt,
        id=f"rerun/{evt.event_id}",
        task_queue=nc.settings.task_queue,
        result_type=DeliveryOutcome,
    )
    assert rerun.channels == {}
    assert sorted(m.rcpt_tos[0] for m in smtp.sink.messages) == sorted([ADMIN_EN.email, ADMIN_FR.email])
    assert len(await _queue(db, event_id=evt.event_id)) == 4


async def test_smtp_down_then_up_is_delivered_with_failed_attempts_logged(temporal_client, settings, db, smtp):
    patient = settings.model_copy(update={"notification_retry_attempts": 10})
    async with running_worker(temporal_client, patient):
        nc = NotificationClient(temporal_client, patient)
        await nc.sync_users(DIRECTORY)
        smtp.stop()
        evt = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(ASSIGNEE)), actor=ADMIN_EN)
        workflow_id = await nc.publish(evt)
        await asyncio.sleep(2.0)
        smtp.start()
        outcome = await temporal_client.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()
    assert outcome.channels["EMAIL"].sent == 1
    assert [m.rcpt_tos for m in smtp.sink.messages] == [[ASSIGNEE.email]]
    (row,) = await _queue(db, event_id=evt.event_id, delivery_method="EMAIL")
    assert row.status == "SENT" and row.retry_count >= 1
    async with db() as session:
        logs = (
            (
                await session.execute(
                    select(NotificationLogRow)
                    .where(NotificationLogRow.queue_id == row.id)
                    .order_by(NotificationLogRow.attempt)
                )
            )
            .scalars()
            .all()
        )
    assert [log.status for log in logs[:-1]] == ["FAILED"] * (len(logs) - 1) and len(logs) >= 2
    assert "unreachable" in logs[0].error_details
    assert logs[-1].status == "SENT"


async def test_smtp_550_fails_that_row_only_without_retrying(nc, smtp, db):
    smtp.sink.rejected[ADMIN_FR.email] = "No such mailbox here"
    evt = event("ISSUE_CREATED")
    outcome = await _publish_and_wait(nc, evt)
    assert outcome.channels["EMAIL"].sent == 1 and outcome.channels["EMAIL"].failed == 1
    assert [m.rcpt_tos for m in smtp.sink.messages] == [[ADMIN_EN.email]]
    (failed,) = await _queue(db, event_id=evt.event_id, recipient_id=ADMIN_FR.id, delivery_method="EMAIL")
    assert failed.status == "FAILED" and "550" in failed.error_message and "No such mailbox" in failed.error_message
    async with db() as session:
        attempts = (
            (await session.execute(select(NotificationLogRow).where(NotificationLogRow.queue_id == failed.id)))
            .scalars()
            .all()
        )
    assert len(attempts) == 1
    (in_app,) = await _queue(db, event_id=evt.event_id, recipient_id=ADMIN_FR.id, delivery_method="IN_APP")
    assert in_app.status == "SENT"


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda e: e["issue"].pop("title"), "issue.title"),
        (lambda e: e["issue"].__setitem__("priority", "URGENT"), "issue.priority"),
        (lambda e: e.__setitem__("colour", "red"), "colour"),
        (lambda e: e.__setitem__("occurred_at", "yesterday"), "occurred_at"),
        (lambda e: e["actor"].__setitem__("name", "Eve\r\nBcc: spy@evil.test"), "actor.name"),
        (lambda e: e["issue"].__setitem__("id", "ISS-1\r\nX-Injected: 1"), "issue.id"),
        (lambda e: e.__setitem__("context", _nested(220)), "MAX_CONTEXT_DEPTH"),
        (lambda e: e.__setitem__("context", _nested(2_000)), "MAX_CONTEXT_DEPTH"),
        (lambda e: e.__setitem__("context", {"dump": "x" * 300_000}), "MAX_EVENT_BYTES"),
    ],
    ids=[
        "no-title",
        "bad-priority",
        "unknown-field",
        "naive-time",
        "crlf-name",
        "crlf-issue-id",
        "nested-220",
        "nested-2000",
        "300-kB",
    ],
)
async def test_malformed_event_is_rejected_naming_the_field_and_starts_nothing(
    mutate, field, temporal_client, settings, db
):
    raw = event_dict("ISSUE_CREATED")
    mutate(raw)
    nc = NotificationClient(temporal_client, settings)
    with pytest.raises(InvalidEvent) as caught:
        await nc.publish(raw)
    assert field in str(caught.value)
    with pytest.raises(RPCError):
        await temporal_client.get_workflow_handle(f"event/{raw['event_id']}").describe()
    async with db() as session:
        assert (await session.execute(select(IssueEventRow))).first() is None


async def test_an_event_cannot_rewrite_the_directory(nc, smtp, db):
    """People named in an event may be added or have blanks filled; what sync_users set stays."""
    from notiflow.models import UserRow

    wrong = {"id": ASSIGNEE.id, "name": "Someone Else", "email": "attacker@example.org", "locale": "en"}
    newcomer = {"id": "u-new", "name": "New Person", "email": "new@example.mg"}
    evt = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=wrong, reporter=newcomer), actor=ADMIN_EN)
    await _publish_and_wait(nc, evt)
    async with db() as session:
        assignee = await session.get(UserRow, ASSIGNEE.id)
        added = await session.get(UserRow, "u-new")
    assert (assignee.name, assignee.email, assignee.locale) == (ASSIGNEE.name, ASSIGNEE.email, "fr")
    assert added.email == "new@example.mg"
    assert [m.rcpt_tos for m in smtp.sink.messages] == [[ASSIGNEE.email]]
