"""SMS over an HTTP gateway: E.164 numbers, sender, token, length, the gateway's answers, Retry-After.

The gateway is a real HTTP server on a local port (tests/delivery/sms_gateway.py) that refuses what a real
one would refuse; nothing is mocked.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.delivery.activities import DeliveryActivities
from activities.delivery.providers.sms import fit_text, retry_after_seconds
from notiflow.client import NotificationClient
from notiflow.contracts import User, normalise_phone
from notiflow.directory import upsert_users
from notiflow.models import NotificationLogRow, NotificationPreferenceRow, NotificationQueueRow, UserRow
from notiflow.runs import DeliveryOutcome, NotificationRequest
from tests.conftest import running_worker
from tests.delivery.sms_gateway import Scripted, SmsGateway
from tests.factories import ADMIN_EN, ADMIN_FR, ASSIGNEE, REPORTER, event, issue_dict, ref
from workflows.delivery.types import DeliveryBatch

PHONE = "+261341234567"
WITH_PHONE = ASSIGNEE.model_copy(update={"phone": PHONE})


def sms_settings(settings, gateway: SmsGateway, **extra):
    return settings.model_copy(
        update={
            "sms_url": gateway.url,
            "sms_token": SecretStr(gateway.token),
            "sms_sender": gateway.sender,
            "sms_format": "twilio" if gateway.twilio else "json",
            "outbound_allow": "127.0.0.1",
            **extra,
        }
    )


async def opt_in(db, user_id: str, notification_type: str = "ISSUE_ASSIGNED") -> None:
    async with db.begin() as session:
        session.add(
            NotificationPreferenceRow(
                user_id=user_id,
                notification_type=notification_type,
                delivery_method="SMS",
                is_enabled=True,
                frequency="IMMEDIATE",
            )
        )


def assigned(title: str = "Licence card printer offline"):
    return event("ISSUE_ASSIGNED", issue=issue_dict(title=title, assignee=ref(WITH_PHONE)))


async def _sms_rows(db) -> list[NotificationQueueRow]:
    async with db() as session:
        return list(
            (
                await session.execute(select(NotificationQueueRow).where(NotificationQueueRow.delivery_method == "SMS"))
            ).scalars()
        )


async def _send_sms(db, settings, evt) -> NotificationQueueRow:
    """Plan the event and run the SMS batch's deliver activity once."""
    activities = DeliveryActivities(db, settings)
    try:
        plan = await ActivityEnvironment().run(
            activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-sms")
        )
        ids = [d.queue_id for d in plan.deliveries if d.channel == "SMS"]
        assert len(ids) == 1, plan
        await ActivityEnvironment().run(
            activities.deliver, DeliveryBatch(channel="SMS", queue_ids=ids, maximum_attempts=1)
        )
    finally:
        await activities.close()
    (row,) = await _sms_rows(db)
    return row


@pytest.fixture
async def directory(db):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER, WITH_PHONE])
    await opt_in(db, WITH_PHONE.id)


# ------------------------------------------------------------------ texts and numbers (pure)


def test_a_long_text_keeps_the_issue_id_and_the_link_where_it_fits():
    link = "http://tracker.test/admin/issues/ISS-42"
    text = f"ISS-42 assigned to you (High): {'very long title ' * 20} {link}"
    cut = fit_text(text, 160, issue_id="ISS-42", link=link)
    assert len(cut) <= 160 and cut.startswith("ISS-42 assigned") and cut.endswith(f"... {link}")
    tiny = fit_text(text, 40, issue_id="ISS-42", link=link)  # no room for the link: the id stays
    assert len(tiny) <= 40 and "ISS-42" in tiny and link not in tiny
    late = fit_text("x" * 300 + " ISS-42", 60, issue_id="ISS-42")  # named too late: said first
    assert late.startswith("ISS-42") and len(late) <= 60
    assert fit_text("Printer offline", 160, issue_id="ISS-7") == "ISS-7: Printer offline"
    assert fit_text("short\n\n  text ", 160) == "short\ntext"


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_seconds("1") == 1.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no extra wait
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("999999") == 3600.0  # capped


def test_national_numbers_are_read_in_the_default_region():
    assert normalise_phone("034 12 345 67") == PHONE
    assert normalise_phone("+261 34 12 345 67") == PHONE
    assert normalise_phone("06 12 34 56 78", "FR") == "+33612345678"
    assert User(id="u-1", name="Rakoto", phone="034 12 345 67").phone == PHONE  # sync_users, PUT /users
    evt = event("ISSUE_ASSIGNED", issue=issue_dict(assignee={"id": "u-2", "name": "Soa", "phone": "0341234567"}))
    assert evt.issue.assignee.phone == PHONE  # events
    for bad in ("12", "034 12", "not a number"):
        with pytest.raises(ValidationError, match="phone"):
            User(id="u-1", name="Rakoto", phone=bad)


# ------------------------------------------------------------------ the gateway's answers


async def test_json_gateway_gets_the_e164_number_sender_token_and_a_text_cut_to_size(db, settings, directory):
    async with SmsGateway() as gateway:
        row = await _send_sms(db, sms_settings(settings, gateway), assigned("Printer offline " * 30))
    (sms,) = gateway.messages
    assert (sms.to, sms.sender) == (PHONE, "NOTIFLOW")
    assert len(sms.text) <= 160 and row.issue_id in sms.text
    # the link kept at the end is the wrapped one (GET /r/{code}), never the raw issue link
    assert sms.text.endswith(row.context_data["tracked_link"]) and "/r/" in row.context_data["tracked_link"]
    assert row.context_data["link"].endswith(f"/admin/issues/{row.issue_id}") and "/admin/issues/" not in sms.text
    assert sms.headers["idempotency-key"] == str(row.id)
    assert (row.status, row.provider_message_id) == ("SENT", "gw-1")
    assert row.provider == f"sms:json 127.0.0.1:{gateway.port}"


async def test_twilio_format_form_body_and_basic_auth(db, settings, directory):
    async with SmsGateway(twilio=True) as gateway:
        row = await _send_sms(db, sms_settings(settings, gateway), assigned())
    (sms,) = gateway.messages
    assert sms.to == PHONE and "Messages.json" in gateway.url
    assert row.status == "SENT" and row.provider_message_id.startswith("SM")


async def test_a_400_fails_the_row_with_the_gateways_words(db, settings, directory):
    async with SmsGateway() as gateway:
        gateway.replies.append(Scripted(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}))
        row = await _send_sms(db, sms_settings(settings, gateway), assigned())
    assert row.status == "FAILED"
    assert row.error_message == "SMS gateway answered 400: Attempt to send to unsubscribed recipient (code 21610)"
    assert len(gateway.attempts) == 1  # not retried


async def test_a_wrong_token_is_refused_by_the_gateway_and_fails_the_row(db, settings, directory):
    async with SmsGateway() as gateway:
        row = await _send_sms(db, sms_settings(settings, gateway, sms_token=SecretStr("wrong")), assigned())
    assert row.status == "FAILED" and "bad token" in row.error_message and not gateway.messages


async def test_a_gateway_on_a_private_address_is_refused_without_connecting(db, settings, directory):
    async with SmsGateway() as gateway:
        row = await _send_sms(db, sms_settings(settings, gateway, outbound_allow=""), assigned())
    assert row.status == "FAILED" and "SMS gateway URL refused" in row.error_message
    assert gateway.attempts == []  # the SSRF guard refused it before any connection


async def test_429_with_retry_after_is_retried_no_sooner_and_sent_once(temporal_client, db, settings, directory):
    async with SmsGateway() as gateway:
        gateway.replies.append(Scripted(429, {"message": "slow down"}, {"Retry-After": "1"}))
        configured = sms_settings(settings, gateway, delivery_deadline=settings.delivery_deadline * 10)
        async with running_worker(temporal_client, configured):
            nc = NotificationClient(temporal_client, configured)
            workflow_id = await nc.publish(assigned())
            outcome = await temporal_client.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()
    assert outcome.channels["SMS"].sent == 1
    assert len(gateway.messages) == 1 and len(gateway.attempts) == 2
    assert gateway.attempts[1] - gateway.attempts[0] >= 1.0  # Retry-After honoured (the backoff alone is 0.2 s)
    (row,) = await _sms_rows(db)
    async with db() as session:
        logs = list(
            (
                await session.execute(
                    select(NotificationLogRow)
                    .where(NotificationLogRow.queue_id == row.id)
                    .order_by(NotificationLogRow.attempt)
                )
            ).scalars()
        )
    assert [(log.attempt, log.status) for log in logs] == [(1, "FAILED"), (2, "SENT")]
    assert "429" in logs[0].error_details and "slow down" in logs[0].error_details
    assert (logs[1].created_at - logs[0].created_at).total_seconds() >= 1.0


async def test_sync_users_stores_national_numbers_in_e164(temporal_client, db, settings, worker):
    nc = NotificationClient(temporal_client, settings)
    await nc.sync_users([User(id="u-sms", name="Soa", phone="034 12 345 67")])
    async with db() as session:
        assert (await session.get(UserRow, "u-sms")).phone == PHONE
