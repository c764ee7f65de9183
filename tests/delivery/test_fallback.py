"""Failover: a critical notification that FAILED by mail goes out by SMS; a second SMTP relay takes over.

Real services only: the Temporal dev server, PostgreSQL, aiosmtpd servers (one answering 550 for an
address, or a stopped primary) and the local SMS gateway of tests/delivery/sms_gateway.py.
"""

from __future__ import annotations

import socket

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.delivery.activities import DeliveryActivities
from activities.delivery.fallback import next_channels
from notiflow.client import NotificationClient
from notiflow.directory import upsert_users
from notiflow.models import NotificationLogRow, NotificationQueueRow
from notiflow.runs import DeliveryOutcome, NotificationRequest
from tests.conftest import running_worker
from tests.delivery.sms_gateway import SmsGateway
from tests.delivery.test_sms import PHONE, sms_settings
from tests.factories import ADMIN_EN, ADMIN_FR, ASSIGNEE, REPORTER, event, issue_dict, ref
from workflows.delivery.types import DeliveryBatch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ON_CALL = ADMIN_FR.model_copy(update={"phone": PHONE})  # on call, with a phone but no SMS preference
STAFF = ASSIGNEE.model_copy(update={"phone": "+261331234567"})


async def _rows(db) -> dict[tuple[str, str], NotificationQueueRow]:
    async with db() as session:
        rows = (await session.execute(select(NotificationQueueRow))).scalars()
        return {(r.recipient_id, r.delivery_method): r for r in rows}


async def _run(temporal_client, settings, evt) -> DeliveryOutcome:
    async with running_worker(temporal_client, settings):
        workflow_id = await NotificationClient(temporal_client, settings).publish(evt)
        handle = temporal_client.get_workflow_handle(workflow_id, result_type=DeliveryOutcome)
        return await handle.result()


def test_the_next_channel_follows_the_configured_order():
    order = ("EMAIL", "SMS", "IN_APP")
    assert next_channels("EMAIL", order) == ["SMS", "IN_APP"]
    assert next_channels("IN_APP", order) == []
    assert next_channels("SLACK", ("SMS", "EMAIL")) == ["SMS", "EMAIL"]


async def test_a_critical_mail_refused_with_550_goes_out_by_sms_and_both_rows_say_so(
    temporal_client, db, settings, smtp
):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ON_CALL, REPORTER])
    smtp.sink.rejected[ON_CALL.email] = "mailbox unavailable"
    evt = event("AUTO_ISSUE_DETECTED", issue=issue_dict(priority="CRITICAL", is_auto_reported=True), actor=None)
    async with SmsGateway() as gateway:
        outcome = await _run(temporal_client, sms_settings(settings, gateway), evt)
    (sms,) = gateway.messages
    assert sms.to == PHONE and evt.issue.id in sms.text
    rows = await _rows(db)
    mail, text = rows[(ON_CALL.id, "EMAIL")], rows[(ON_CALL.id, "SMS")]
    assert mail.status == "FAILED" and "550" in mail.error_message
    assert mail.context_data["fallback_to"] == {"channel": "SMS", "queue_id": str(text.id)}
    assert text.status == "SENT" and text.context_data["fallback_of"] == str(mail.id)
    assert text.context_data["fallback_from"] == "EMAIL" and text.provider.startswith("sms:json")
    # The decisions taken, on the rows: the mail was planned to be sent, then fell back; the text is its fallback.
    assert mail.decision["outcome"] == "FELL_BACK" and mail.decision["fallback_to"]["queue_id"] == str(text.id)
    assert mail.decision["previous"]["outcome"] == "SEND" and "critical" in mail.decision["previous"]["reason"]
    assert text.decision["outcome"] == "SEND" and text.decision["fallback_of"] == str(mail.id)
    # the fallback's link is wrapped too (engagement): the SMS carries /r/{code}, not the raw issue link
    assert "/r/" in text.context_data["tracked_link"] and text.context_data["tracked_link"] in sms.text
    assert text.context_data["link"] not in sms.text
    async with db() as session:
        statuses = [
            log.status
            for log in (
                await session.execute(select(NotificationLogRow).where(NotificationLogRow.queue_id == mail.id))
            ).scalars()
        ]
    assert sorted(statuses) == ["FAILED", "FALLBACK"]
    assert outcome.fallbacks == {"EMAIL→SMS": 1} and outcome.channels["SMS"].sent == 1
    assert "critical fallback EMAIL→SMS 1" in outcome.describe()


async def test_a_non_critical_mail_refused_with_550_does_not_fall_back(temporal_client, db, settings, smtp):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER, STAFF])
    smtp.sink.rejected[STAFF.email] = "mailbox unavailable"
    evt = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(STAFF)))
    async with SmsGateway() as gateway:
        outcome = await _run(temporal_client, sms_settings(settings, gateway), evt)
    assert gateway.attempts == [] and outcome.fallbacks == {}
    rows = await _rows(db)
    assert rows[(STAFF.id, "EMAIL")].status == "FAILED" and (STAFF.id, "SMS") not in rows
    assert "fallback_to" not in rows[(STAFF.id, "EMAIL")].context_data


async def test_with_the_primary_relay_down_the_fallback_relay_delivers_and_the_row_names_it(db, settings, smtp):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER])
    relay = type(smtp)()  # a second mail server of the same kind as the test's own
    relay.start()
    try:
        dead_port = free_port()  # nothing listens: connection refused
        configured = settings.model_copy(
            update={"smtp_port": dead_port, "smtp_fallback_host": "127.0.0.1", "smtp_fallback_port": relay.port}
        )
        activities = DeliveryActivities(db, configured)
        try:
            evt = event("ISSUE_CREATED")
            plan = await ActivityEnvironment().run(
                activities.plan_deliveries,
                NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-relay"),
            )
            emails = [d.queue_id for d in plan.deliveries if d.channel == "EMAIL"]
            result = await ActivityEnvironment().run(
                activities.deliver, DeliveryBatch(channel="EMAIL", queue_ids=emails, maximum_attempts=3)
            )
        finally:
            await activities.close()
        assert result.sent == 2
        assert sorted(m.rcpt_tos[0] for m in await relay.wait_for(2)) == sorted([ADMIN_EN.email, ADMIN_FR.email])
    finally:
        relay.stop()
    assert smtp.sink.messages == []
    rows = await _rows(db)
    assert {rows[(u.id, "EMAIL")].provider for u in (ADMIN_EN, ADMIN_FR)} == {f"smtp:fallback 127.0.0.1:{relay.port}"}


async def test_the_primary_relay_names_itself_when_it_takes_the_mail(db, settings, smtp):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER])
    activities = DeliveryActivities(
        db, settings.model_copy(update={"smtp_fallback_host": "127.0.0.1", "smtp_fallback_port": free_port()})
    )
    try:
        evt = event("ISSUE_CREATED")
        plan = await ActivityEnvironment().run(
            activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-relay")
        )
        emails = [d.queue_id for d in plan.deliveries if d.channel == "EMAIL"]
        await ActivityEnvironment().run(
            activities.deliver, DeliveryBatch(channel="EMAIL", queue_ids=emails, maximum_attempts=3)
        )
    finally:
        await activities.close()
    rows = await _rows(db)
    assert rows[(ADMIN_EN.id, "EMAIL")].provider == f"smtp:primary 127.0.0.1:{smtp.port}"


async def test_a_critical_mail_waits_minutes_not_a_day_before_falling_back(temporal_client, db, settings, smtp):
    """SMTP down (not refusing the address): a critical row gives up at its own short deadline and goes by SMS,
    while a non-critical one would keep waiting for the day-long delivery deadline."""
    from datetime import timedelta

    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ON_CALL, REPORTER])
    smtp.stop()
    patient = settings.model_copy(
        update={
            "delivery_deadline": timedelta(hours=1),
            "critical_delivery_deadline": timedelta(seconds=1),
            "retry_initial_seconds": 0.2,
            "retry_max_seconds": 0.5,
        }
    )
    evt = event("AUTO_ISSUE_DETECTED", issue=issue_dict(priority="CRITICAL", is_auto_reported=True), actor=None)
    async with SmsGateway() as gateway:
        outcome = await _run(temporal_client, sms_settings(patient, gateway), evt)
    assert [m.to for m in gateway.messages] == [PHONE]
    mail = (await _rows(db))[(ON_CALL.id, "EMAIL")]
    assert mail.status == "FAILED" and mail.error_message.startswith("gave up after")
    assert outcome.fallbacks == {"EMAIL→SMS": 1}
