"""The deliver activity on its own: a retried or repeated batch never sends a row twice."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.delivery.activities import DeliveryActivities
from notiflow.directory import upsert_users
from notiflow.models import NotificationLogRow, NotificationQueueRow
from notiflow.runs import NotificationRequest
from tests.factories import ADMIN_EN, ADMIN_FR, DIRECTORY, event
from workflows.delivery.types import DeliveryBatch


@pytest.fixture
async def pipeline(db, settings):
    async with db.begin() as session:
        await upsert_users(session, DIRECTORY)
    activities = DeliveryActivities(db, settings)
    yield activities
    await activities.close()


async def _plan(pipeline: DeliveryActivities, evt):
    return await ActivityEnvironment().run(
        pipeline.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-test")
    )


async def test_a_repeated_batch_sends_nothing_more(pipeline, smtp, db):
    plan = await _plan(pipeline, event("ISSUE_CREATED"))
    emails = [d.queue_id for d in plan.deliveries if d.channel == "EMAIL"]
    batch = DeliveryBatch(channel="EMAIL", queue_ids=emails, maximum_attempts=3)

    first = await ActivityEnvironment().run(pipeline.deliver, batch)
    again = await ActivityEnvironment().run(pipeline.deliver, batch)  # e.g. a retry after a crash

    assert (first.sent, again.sent) == (2, 2)  # the second run reports, but does not resend
    assert sorted(m.rcpt_tos[0] for m in smtp.sink.messages) == sorted([ADMIN_EN.email, ADMIN_FR.email])
    async with db() as session:
        logs = (await session.execute(select(NotificationLogRow))).scalars().all()
    assert len(logs) == 2


async def test_planning_the_same_event_again_queues_nothing_new(pipeline, db):
    evt = event("ISSUE_CREATED")
    first = await _plan(pipeline, evt)
    again = await _plan(pipeline, evt)
    assert len(first.deliveries) == 4
    assert {d.queue_id for d in again.deliveries} == {d.queue_id for d in first.deliveries}  # still PENDING: same rows
    async with db() as session:
        assert len((await session.execute(select(NotificationQueueRow))).scalars().all()) == 4


async def test_the_last_attempt_marks_unreachable_rows_failed_with_the_reason(pipeline, smtp, db):
    plan = await _plan(pipeline, event("ISSUE_CREATED"))
    emails = [d.queue_id for d in plan.deliveries if d.channel == "EMAIL"]
    smtp.stop()
    env = ActivityEnvironment()
    env.info = env.info.__class__(**{**env.info.__dict__, "attempt": 3})
    result = await env.run(pipeline.deliver, DeliveryBatch(channel="EMAIL", queue_ids=emails, maximum_attempts=3))
    assert (result.sent, result.failed) == (0, 2)
    async with db() as session:
        rows = (
            (await session.execute(select(NotificationQueueRow).where(NotificationQueueRow.delivery_method == "EMAIL")))
            .scalars()
            .all()
        )
    assert {r.status for r in rows} == {"FAILED"}
    assert all("gave up after 3 attempts" in r.error_message and "unreachable" in r.error_message for r in rows)


async def test_a_broken_template_fails_that_row_with_the_reason_and_sends_the_rest(pipeline, db, smtp):
    from sqlalchemy import update

    from notiflow.models import NotificationTemplateRow

    async with db.begin() as session:
        await session.execute(
            update(NotificationTemplateRow)
            .where(NotificationTemplateRow.name == "HIGH_PRIORITY_ISSUE.EMAIL.fr")
            .values(body_template="{{ issue.nope }}")
        )
    try:
        plan = await _plan(pipeline, event("ISSUE_CREATED"))
        assert plan.failed == {"EMAIL": 1}
        async with db() as session:
            (row,) = (
                (await session.execute(select(NotificationQueueRow).where(NotificationQueueRow.status == "FAILED")))
                .scalars()
                .all()
            )
        assert row.recipient_id == ADMIN_FR.id and "HIGH_PRIORITY_ISSUE.EMAIL.fr" in row.error_message
        assert "nope" in row.error_message
        assert len([d for d in plan.deliveries if d.channel == "EMAIL"]) == 1
    finally:
        async with db.begin() as session:
            from notiflow.templates.defaults import load_default_templates

            original = next(t for t in load_default_templates() if t.name == "HIGH_PRIORITY_ISSUE.EMAIL.fr")
            await session.execute(
                update(NotificationTemplateRow)
                .where(NotificationTemplateRow.name == original.name)
                .values(body_template=original.body_template)
            )


def test_composed_mail_parses_back_to_what_was_rendered():
    from datetime import datetime, timezone
    from email import message_from_bytes, policy

    from activities.delivery.providers.base import OutgoingMessage
    from activities.delivery.providers.smtp import compose
    from notiflow.settings import Settings

    mail = OutgoingMessage(
        queue_id="3f2c",
        address="hery@example.mg",
        recipient_name="Héry Rasoa",
        subject="[HAUTE] Ticket prioritaire ISS-42 : imprimante hors ligne — « urgent » " * 3,
        text="Bonjour Héry,\nLe ticket ISS-42 est prioritaire.\n",
        html="<p>Bonjour <b>Héry</b></p>",
        issue_id="ISS-42",
        link=None,
        notification_type="HIGH_PRIORITY_ISSUE",
        unsubscribe_url="http://api.test/api/v1/notifications/unsubscribe/tok",
    )
    settings = Settings(email_from="noreply@example.mg")
    sent_at = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
    raw = compose(mail, settings, sent_at=sent_at)
    assert raw == compose(mail, settings, sent_at=sent_at)  # same row, same bytes
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == mail.subject
    assert message["To"].addresses[0].display_name == "Héry Rasoa"
    assert message["Message-ID"] == "<3f2c@example.mg>" and message["References"] == "<issue-ISS-42@example.mg>"
    assert message["List-Unsubscribe"] == f"<{mail.unsubscribe_url}>"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == mail.text
    assert message.get_body(("html",)).get_content().strip() == mail.html


def test_no_header_value_can_add_a_header_line():
    """Names and ids come from outside: CR/LF in them must never become Bcc:, X-Injected: or forged threading."""
    from datetime import datetime, timezone
    from email import message_from_bytes, policy

    from activities.delivery.providers.base import OutgoingMessage
    from activities.delivery.providers.smtp import compose
    from notiflow.settings import Settings

    mail = OutgoingMessage(
        queue_id="3f2c",
        address="hery@example.mg",
        recipient_name="Eve\r\nBcc: spy@evil.test\nX-Injected: 1",
        subject="Hello\r\nBcc: spy@evil.test",
        text="body",
        html=None,
        issue_id="ISS-1>\r\nIn-Reply-To: <forged@evil.test",
        link=None,
        notification_type="ISSUE_CREATED",
        unsubscribe_url="http://u\r\nX-Injected: 2",
    )
    raw = compose(mail, Settings(email_from="noreply@example.mg"), sent_at=datetime.now(timezone.utc))
    message = message_from_bytes(raw, policy=policy.default)
    names = [name.lower() for name in message.keys()]
    assert "bcc" not in names and "x-injected" not in names
    assert names.count("in-reply-to") == 1
    assert message["In-Reply-To"] == "<issue-ISS-1___In-Reply-To:__forged_evil.test@example.mg>"  # one msg-id
    assert message["X-Notiflow-Issue"] == "ISS-1___In-Reply-To:__forged_evil.test"
    assert message["To"].addresses[0].addr_spec == "hery@example.mg"
