"""Web Push: VAPID, aes128gcm, the push service's answers, Retry-After, the SSRF guard, the subscriptions API.

The push service is a real HTTP server on a local port (tests/delivery/push_service.py) that verifies the
VAPID JWT and decrypts the body with the subscription's private key, as a browser's push service and the
browser would; nothing is mocked.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.delivery.activities import DeliveryActivities
from activities.delivery.providers.base import OutgoingMessage
from activities.delivery.providers.push import MAX_BODY_BYTES, PushProvider, fit_body, topic
from notiflow.client import NotificationClient
from notiflow.directory import upsert_users
from notiflow.models import EngagementEventRow, NotificationPreferenceRow, NotificationQueueRow, PushSubscriptionRow
from notiflow.runs import DeliveryOutcome, NotificationRequest
from notiflow.vapid import new_pair
from programs.dev.pushcatcher import (
    DEV_APNS_KEY_ID,
    DEV_APNS_TEAM,
    DEV_APNS_TOPIC,
    DEV_FCM_PROJECT,
    DevPushKeys,
    PushCatcher,
)
from tests.conftest import running_worker
from tests.delivery.apns_service import KEY_ID as APNS_KEY
from tests.delivery.apns_service import TEAM_ID as APNS_TEAM
from tests.delivery.apns_service import TOPIC as APNS_TOPIC
from tests.delivery.apns_service import ApnsService
from tests.delivery.apns_service import Scripted as ApnsScripted
from tests.delivery.fcm_service import PROJECT, FcmService
from tests.delivery.push_service import Browser, PushService, Scripted
from tests.factories import ADMIN_EN, ADMIN_FR, ASSIGNEE, REPORTER, event, issue_dict, ref
from workflows.delivery.types import DeliveryBatch

VAPID_PRIVATE, VAPID_PUBLIC = new_pair()


def push_settings(settings, **extra):
    return settings.model_copy(
        update={
            "vapid_private_key": SecretStr(VAPID_PRIVATE),
            "vapid_subject": "mailto:ops@tracker.test",
            "outbound_allow": "127.0.0.1",
            **extra,
        }
    )


async def subscribe(db, browser: Browser, user_id: str = ASSIGNEE.id) -> None:
    subscription = browser.json()
    async with db.begin() as session:
        session.add(
            PushSubscriptionRow(
                user_id=user_id,
                kind="WEB",
                endpoint=subscription["endpoint"],
                p256dh=subscription["keys"]["p256dh"],
                auth=subscription["keys"]["auth"],
            )
        )


def assigned(title: str = "Licence card printer offline"):
    return event("ISSUE_ASSIGNED", issue=issue_dict(title=title, assignee=ref(ASSIGNEE)))


async def _push_rows(db) -> list[NotificationQueueRow]:
    async with db() as session:
        query = select(NotificationQueueRow).where(NotificationQueueRow.delivery_method == "PUSH")
        return list((await session.execute(query)).scalars())


async def _subscriptions(db) -> list[PushSubscriptionRow]:
    async with db() as session:
        return list((await session.execute(select(PushSubscriptionRow))).scalars())


async def _send_push(db, settings, evt) -> NotificationQueueRow:
    """Plan the event and run the PUSH batch's deliver activity once."""
    activities = DeliveryActivities(db, settings)
    try:
        plan = await ActivityEnvironment().run(
            activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-push")
        )
        ids = [d.queue_id for d in plan.deliveries if d.channel == "PUSH"]
        assert len(ids) == 1, plan
        await ActivityEnvironment().run(
            activities.deliver, DeliveryBatch(channel="PUSH", queue_ids=ids, maximum_attempts=1)
        )
    finally:
        await activities.close()
    (row,) = await _push_rows(db)
    return row


@pytest.fixture
async def directory(db):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER, ASSIGNEE])
        session.add(
            NotificationPreferenceRow(
                user_id=ASSIGNEE.id,
                notification_type="ISSUE_ASSIGNED",
                delivery_method="PUSH",
                is_enabled=True,
                frequency="IMMEDIATE",
            )
        )


# ------------------------------------------------------------------ the message (pure)


def test_the_body_fits_178_bytes_and_keeps_the_issue_id():
    body = fit_body("ISS-42 assigned to you: " + "élévation très longue " * 20, "ISS-42")
    assert len(body.encode()) <= MAX_BODY_BYTES and body.startswith("ISS-42")
    late = fit_body("é" * 300 + " ISS-42", "ISS-42")
    assert "ISS-42" in late and len(late.encode()) <= MAX_BODY_BYTES
    assert topic("ISS-42", "q1") == topic("ISS-42", "q2") != topic("ISS-43", "q1")
    assert len(topic("ISS-42", "q")) <= 32


# ------------------------------------------------------------------ the push service's answers


async def test_delivered_signed_and_decrypted_with_title_issue_id_and_link(db, settings, directory):
    async with PushService(VAPID_PUBLIC) as service:
        browser = service.browser()
        await subscribe(db, browser)
        row = await _send_push(db, push_settings(settings), assigned())
    assert service.refusals == []
    (push,) = service.messages
    assert push.payload["title"] == row.subject and row.issue_id in push.payload["title"]
    assert row.issue_id in push.payload["body"] and len(push.payload["body"].encode()) <= MAX_BODY_BYTES
    assert push.payload["issue_id"] == row.issue_id and push.payload["notification_id"] == str(row.id)
    # the click target is the tracked link (GET /r/{code}), which leads to the issue
    assert push.payload["link"] == row.context_data["tracked_link"] and "/r/" in push.payload["link"]
    assert row.context_data["link"].endswith(f"/admin/issues/{row.issue_id}")
    assert push.claims["aud"] == service.origin and push.claims["sub"] == "mailto:ops@tracker.test"
    assert (push.headers["ttl"], push.headers["urgency"]) == (str(4 * 3600), "normal")
    assert push.headers["topic"] == topic(row.issue_id, str(row.id))
    assert row.status == "SENT" and row.provider == "push:web"
    (subscription,) = await _subscriptions(db)
    assert subscription.last_success_at is not None


async def test_a_critical_one_lives_24_hours_with_high_urgency(db, settings, directory):
    async with PushService(VAPID_PUBLIC) as service:
        browser = service.browser()
        await subscribe(db, browser)
        provider = PushProvider(push_settings(settings), db)
        message = OutgoingMessage(
            queue_id=str(uuid.uuid4()),
            address=ASSIGNEE.id,
            recipient_name=None,
            subject="Automatic error detected: ISS-9",
            text="ISS-9 automatic error (Critical): payments down",
            html=None,
            issue_id="ISS-9",
            link="http://tracker.test/admin/issues/ISS-9",
            unsubscribe_url=None,
            notification_type="AUTO_ISSUE_DETECTED",
            critical=True,
        )
        try:
            receipt = await provider.send(message, sent_at=datetime.now(timezone.utc))
        finally:
            await provider.close()
    (push,) = service.messages
    assert (push.headers["ttl"], push.headers["urgency"]) == (str(24 * 3600), "high")
    assert push.payload["link"] == message.link and receipt.response.startswith(service.origin)


async def test_410_removes_the_subscription_and_fails_the_row_with_the_reason(db, settings, directory):
    async with PushService(VAPID_PUBLIC) as service:
        browser = service.browser()
        service.script(browser, Scripted(410, "push subscription has unsubscribed or expired."))
        await subscribe(db, browser)
        row = await _send_push(db, push_settings(settings), assigned())
    assert row.status == "FAILED"
    assert "410" in row.error_message and "unsubscribed or expired" in row.error_message
    assert "removed" in row.error_message
    assert await _subscriptions(db) == []
    assert len(service.attempts) == 1  # not retried
    async with db() as session:  # recorded on the row, as a hard bounce is
        bounced = await session.scalar(
            select(EngagementEventRow).where(
                EngagementEventRow.queue_id == row.id, EngagementEventRow.kind == "BOUNCED"
            )
        )
    assert bounced is not None and bounced.detail["push"] == "WEB" and "410" in bounced.detail["answer"]


async def test_an_endpoint_on_a_private_address_is_refused_at_send_without_connecting(db, settings, directory):
    async with PushService(VAPID_PUBLIC) as service:
        await subscribe(db, service.browser())
        row = await _send_push(db, push_settings(settings, outbound_allow=""), assigned())
    assert row.status == "FAILED" and "push endpoint refused" in row.error_message
    assert service.attempts == []  # the SSRF guard refused it before any connection


async def test_no_subscription_means_no_push_row(db, settings, directory):
    evt = assigned()
    activities = DeliveryActivities(db, push_settings(settings))
    try:
        plan = await ActivityEnvironment().run(
            activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-push")
        )
    finally:
        await activities.close()
    assert [d for d in plan.deliveries if d.channel == "PUSH"] == []
    (row,) = await _push_rows(db)
    assert row.status == "CANCELLED" and "no push address" in row.error_message


async def test_429_with_retry_after_is_retried_no_sooner_and_sent_once(temporal_client, db, settings, directory):
    async with PushService(VAPID_PUBLIC) as service:
        browser = service.browser()
        service.script(browser, Scripted(429, "slow down", {"Retry-After": "1"}))
        await subscribe(db, browser)
        configured = push_settings(settings, delivery_deadline=settings.delivery_deadline * 10)
        async with running_worker(temporal_client, configured):
            nc = NotificationClient(temporal_client, configured)
            workflow_id = await nc.publish(assigned())
            outcome = await temporal_client.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()
    assert outcome.channels["PUSH"].sent == 1
    assert len(service.messages) == 1 and len(service.attempts) == 2
    assert service.attempts[1][1] - service.attempts[0][1] >= 1.0  # Retry-After honoured
    (row,) = await _push_rows(db)
    assert row.status == "SENT"


async def test_a_critical_mail_refused_with_550_falls_back_to_push_for_a_person_without_a_phone(
    temporal_client, db, settings, smtp
):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER])  # ADMIN_FR: on call, no phone
    smtp.sink.rejected[ADMIN_FR.email] = "mailbox unavailable"
    evt = event("AUTO_ISSUE_DETECTED", issue=issue_dict(priority="CRITICAL", is_auto_reported=True), actor=None)
    async with PushService(VAPID_PUBLIC) as service:
        await subscribe(db, service.browser(), ADMIN_FR.id)
        configured = push_settings(settings, critical_fallback="EMAIL,SMS,PUSH,IN_APP")
        async with running_worker(temporal_client, configured):
            workflow_id = await NotificationClient(temporal_client, configured).publish(evt)
            await temporal_client.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()
    (push,) = service.messages
    assert push.payload["issue_id"] == evt.issue.id and (push.headers["urgency"], push.headers["ttl"]) == (
        "high",
        str(24 * 3600),
    )
    async with db() as session:
        rows = {
            (r.recipient_id, r.delivery_method): r
            for r in (await session.execute(select(NotificationQueueRow))).scalars()
        }
    mail, pushed = rows[(ADMIN_FR.id, "EMAIL")], rows[(ADMIN_FR.id, "PUSH")]
    assert mail.status == "FAILED" and mail.context_data["fallback_to"] == {
        "channel": "PUSH",
        "queue_id": str(pushed.id),
    }
    assert pushed.status == "SENT" and pushed.context_data["fallback_of"] == str(mail.id)
    assert (ADMIN_FR.id, "SMS") not in rows  # no phone: SMS skipped


# ------------------------------------------------------------------ FCM (phones)


def fcm_settings(settings, fcm: FcmService, **extra):
    return push_settings(
        settings,
        fcm_project_id=PROJECT,
        fcm_service_account=SecretStr(fcm.service_account()),
        fcm_url=fcm.url,
        **extra,
    )


async def add_device(db, token: str, user_id: str = ASSIGNEE.id) -> None:
    async with db.begin() as session:
        session.add(PushSubscriptionRow(user_id=user_id, kind="FCM", endpoint=token))


async def test_fcm_gets_an_oauth2_bearer_from_a_signed_assertion_cached_across_sends(db, settings, directory):
    async with FcmService() as fcm:
        await add_device(db, "device-token-1")
        row = await _send_push(db, fcm_settings(settings, fcm), assigned())
        assert fcm.refusals == [] and row.status == "SENT", row.error_message
        (sent,) = fcm.messages
        assert sent.message["token"] == "device-token-1"
        assert (
            sent.message["notification"]["title"] == row.subject
            and row.issue_id in sent.message["notification"]["body"]
        )
        assert sent.message["data"]["issue_id"] == row.issue_id and sent.message["data"]["notification_id"] == str(
            row.id
        )
        assert "/r/" in sent.message["data"]["link"]
        assert sent.message["android"] == {
            "priority": "normal",
            "ttl": f"{4 * 3600}s",
            "collapse_key": topic(row.issue_id, str(row.id)),
        }
        provider = PushProvider(fcm_settings(settings, fcm), db)
        message = OutgoingMessage(
            queue_id=str(uuid.uuid4()),
            address=ASSIGNEE.id,
            recipient_name=None,
            subject="t",
            text="ISS-1 b",
            html=None,
            issue_id="ISS-1",
            link=None,
            unsubscribe_url=None,
            notification_type="AUTO_ISSUE_DETECTED",
            critical=True,
        )
        try:
            for _ in range(2):
                await provider.send(message, sent_at=datetime.now(timezone.utc))
        finally:
            await provider.close()
        assert fcm.token_requests == 2  # one per provider (worker); its token is reused until it expires
        assert fcm.messages[-1].message["android"]["priority"] == "high"


async def test_fcm_unregistered_removes_the_token_and_fails_the_row(db, settings, directory):
    async with FcmService() as fcm:
        fcm.unregistered.add("old-token")
        await add_device(db, "old-token")
        row = await _send_push(db, fcm_settings(settings, fcm), assigned())
    assert row.status == "FAILED" and "UNREGISTERED" in row.error_message and "removed" in row.error_message
    assert await _subscriptions(db) == []


# ------------------------------------------------------------------ APNs (iPhones, HTTP/2)

APNS_TOKEN = "a1" * 32


def apns_settings(settings, apns: ApnsService, **extra):
    apns_extra = {
        "apns_team_id": APNS_TEAM,
        "apns_key_id": APNS_KEY,
        "apns_private_key": SecretStr(apns.private_key_pem()),
        "apns_topic": APNS_TOPIC,
        "apns_url": apns.url,
    }
    return push_settings(settings, **(apns_extra | extra))


async def add_iphone(db, token: str = APNS_TOKEN, user_id: str = ASSIGNEE.id) -> None:
    async with db.begin() as session:
        session.add(PushSubscriptionRow(user_id=user_id, kind="APNS", endpoint=token))


async def test_apns_delivered_over_http2_with_a_signed_provider_token_and_the_right_headers(db, settings, directory):
    async with ApnsService() as apns:
        await add_iphone(db)
        row = await _send_push(db, apns_settings(settings, apns), assigned())
        assert apns.refusals == [] and row.status == "SENT", row.error_message
        (sent,) = apns.messages
        assert sent.version == "HTTP/2" and sent.token == APNS_TOKEN
        assert sent.claims["iss"] == APNS_TEAM
        assert sent.headers["apns-topic"] == APNS_TOPIC and sent.headers["apns-push-type"] == "alert"
        assert sent.headers["apns-priority"] == "5"
        assert sent.headers["apns-collapse-id"] == topic(row.issue_id, str(row.id))
        assert 4 * 3600 - 60 <= int(sent.headers["apns-expiration"]) - time.time() <= 4 * 3600
        alert = sent.payload["aps"]["alert"]
        assert alert["title"] == row.subject and row.issue_id in alert["body"]
        assert len(alert["body"].encode()) <= MAX_BODY_BYTES
        assert sent.payload["notification_id"] == str(row.id) and "/r/" in sent.payload["link"]
        assert "apns-id" in row.provider_response
        (subscription,) = await _subscriptions(db)
        assert subscription.last_success_at is not None

        provider = PushProvider(apns_settings(settings, apns), db)
        message = OutgoingMessage(
            queue_id=str(uuid.uuid4()),
            address=ASSIGNEE.id,
            recipient_name=None,
            subject="t",
            text="ISS-1 b",
            html=None,
            issue_id="ISS-1",
            link=None,
            unsubscribe_url=None,
            notification_type="AUTO_ISSUE_DETECTED",
            critical=True,
        )
        try:
            for _ in range(2):
                await provider.send(message, sent_at=datetime.now(timezone.utc))
            assert provider._apns is not None and provider._apns.tokens_made == 1  # cached, not one per send
        finally:
            await provider.close()
        assert apns.refusals == [] and len(apns.messages) == 3
        assert apns.messages[-1].headers["apns-priority"] == "10"
        assert 24 * 3600 - 60 <= int(apns.messages[-1].headers["apns-expiration"]) - time.time() <= 24 * 3600


async def test_apns_refuses_a_token_signed_with_another_key_and_the_row_says_why(db, settings, directory):
    async with ApnsService() as apns:
        await add_iphone(db)
        other = ApnsService()  # another team's key
        configured = apns_settings(settings, apns, apns_private_key=SecretStr(other.private_key_pem()))
        row = await _send_push(db, configured, assigned())
    assert apns.refusals == ["403 InvalidProviderToken"] and apns.messages == []
    assert row.status == "FAILED" and "InvalidProviderToken" in row.error_message
    assert len(await _subscriptions(db)) == 1  # the token is not to blame


async def test_apns_unregistered_removes_the_token_and_fails_the_row(db, settings, directory):
    async with ApnsService() as apns:
        apns.unregistered.add(APNS_TOKEN)
        await add_iphone(db)
        row = await _send_push(db, apns_settings(settings, apns), assigned())
    assert row.status == "FAILED" and "410 Unregistered" in row.error_message and "removed" in row.error_message
    assert await _subscriptions(db) == []
    assert len(apns.attempts) == 1


async def test_apns_bad_device_token_removes_it(db, settings, directory):
    async with ApnsService() as apns:
        apns.script(APNS_TOKEN, ApnsScripted(400, "BadDeviceToken"))
        await add_iphone(db)
        row = await _send_push(db, apns_settings(settings, apns), assigned())
    assert row.status == "FAILED" and "BadDeviceToken" in row.error_message and "removed" in row.error_message
    assert await _subscriptions(db) == []


async def test_apns_429_is_retried_no_sooner_than_retry_after(temporal_client, db, settings, directory):
    async with ApnsService() as apns:
        apns.script(APNS_TOKEN, ApnsScripted(429, "TooManyRequests", {"retry-after": "1"}))
        await add_iphone(db)
        configured = apns_settings(settings, apns, delivery_deadline=settings.delivery_deadline * 10)
        async with running_worker(temporal_client, configured):
            workflow_id = await NotificationClient(temporal_client, configured).publish(assigned())
            outcome = await temporal_client.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()
    assert outcome.channels["PUSH"].sent == 1
    assert len(apns.messages) == 1 and len(apns.attempts) == 2 and apns.refusals == []
    assert apns.attempts[1][1] - apns.attempts[0][1] >= 1.0  # Retry-After honoured
    (row,) = await _push_rows(db)
    assert row.status == "SENT"


# ------------------------------------------------------------------ the dev stack's push receiver


async def test_the_dev_push_receiver_checks_decrypts_and_files_web_fcm_and_apns(db, settings, directory, tmp_path):
    keys = DevPushKeys.load_or_make(tmp_path / "push-keys.json")
    assert DevPushKeys.load_or_make(tmp_path / "push-keys.json") == keys  # kept across runs
    catcher = PushCatcher(tmp_path / "push", keys)
    await catcher.astart()
    try:
        web = catcher.demo_subscription("demo-u-agent")
        async with db.begin() as session:
            session.add_all(
                [
                    PushSubscriptionRow(
                        user_id=ASSIGNEE.id,
                        kind="WEB",
                        endpoint=web["endpoint"],
                        p256dh=web["keys"]["p256dh"],
                        auth=web["keys"]["auth"],
                    ),
                    PushSubscriptionRow(  # a browser whose keys the receiver does not hold: filed encrypted
                        user_id=ASSIGNEE.id,
                        kind="WEB",
                        endpoint=f"{catcher.url}/wpush/elsewhere",
                        p256dh=Browser("x").p256dh,
                        auth="AAAAAAAAAAAAAAAAAAAAAA",
                    ),
                    PushSubscriptionRow(user_id=ASSIGNEE.id, kind="FCM", endpoint="dev-fcm"),
                    PushSubscriptionRow(user_id=ASSIGNEE.id, kind="APNS", endpoint="de" * 32),
                ]
            )
        configured = push_settings(
            settings,
            vapid_private_key=SecretStr(keys.vapid_private_key),
            fcm_project_id=DEV_FCM_PROJECT,
            fcm_service_account=SecretStr(keys.fcm_service_account(f"{catcher.url}/token")),
            fcm_url=catcher.url,
            apns_team_id=DEV_APNS_TEAM,
            apns_key_id=DEV_APNS_KEY_ID,
            apns_private_key=SecretStr(keys.apns_key),
            apns_topic=DEV_APNS_TOPIC,
            apns_url=catcher.url,
        )
        row = await _send_push(db, configured, assigned())
    finally:
        await catcher.astop()
    assert catcher.refusals == [] and row.status == "SENT", (catcher.refusals, row.error_message)
    lines = (tmp_path / "push" / "index.txt").read_text().splitlines()
    assert sorted(line.split("\t")[1] for line in lines) == ["APNS", "FCM", "WEB", "WEB"]
    filed = {line.split("\t")[2]: json.loads((tmp_path / "push" / line.split("\t")[0]).read_text()) for line in lines}
    decrypted = filed["demo-u-agent"]
    assert decrypted["payload"]["issue_id"] == row.issue_id and decrypted["payload"]["title"] == row.subject
    assert decrypted["verified"]["sub"] == "mailto:ops@tracker.test" and decrypted["headers"]["authorization"] == (
        "[redacted]"
    )
    assert "encrypted" in filed["elsewhere"]["payload"]
    assert filed["dev-fcm"]["payload"]["notification"]["title"] == row.subject
    assert filed["de" * 32]["payload"]["aps"]["alert"]["title"] == row.subject
    assert filed["de" * 32]["verified"]["iss"] == DEV_APNS_TEAM
    assert row.subject in next(line for line in lines if "demo-u-agent" in line)
