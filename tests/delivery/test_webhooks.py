"""Webhooks end to end: subscriptions saved through the API, events through the real workflow, a local receiver.

The receiver checks the Standard Webhooks signature with hmac/hashlib (not the
``standardwebhooks`` library notiflow signs with), refuses stale and replayed
messages, and answers from a script (503 then 200, 410, a redirect).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import select

from activities.delivery.providers.base import OutgoingMessage
from activities.delivery.providers.hooks import Subscriptions
from activities.delivery.providers.webhook import WebhookProvider
from notiflow.client import NotificationClient
from notiflow.models import AuditLogRow, NotificationLogRow, NotificationQueueRow, WebhookSubscriptionRow
from notiflow.runs import DeliveryOutcome
from programs.api.app import create_app
from tests.api.helpers import ADMIN, JWT_SECRET, asgi_client
from tests.delivery.hook_receiver import Receiver, Reply, WebhookVerifier, expected_signature
from tests.factories import DIRECTORY, event, issue_dict

ROUTE = "/api/v1/notifications/webhooks"


@pytest.fixture
async def hooks_api(settings, db) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"jwt_secret": JWT_SECRET, "rate_limit_per_minute": 1_000_000}))
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def nc(temporal_client, settings, worker) -> NotificationClient:
    client = NotificationClient(temporal_client, settings)
    await client.sync_users(DIRECTORY)
    return client


async def subscribe(api: httpx.AsyncClient, url: str, *types: str, kind: str = "WEBHOOK") -> dict:
    response = await api.post(ROUTE, json={"kind": kind, "url": url, "notification_types": list(types)}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def publish(nc: NotificationClient, evt) -> DeliveryOutcome:
    workflow_id = await nc.publish(evt)
    return await nc.temporal.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()


async def hook_rows(db, subscription_id: str) -> list[NotificationQueueRow]:
    async with db() as session:
        return list(
            (
                await session.scalars(
                    select(NotificationQueueRow).where(NotificationQueueRow.address == subscription_id)
                )
            ).all()
        )


async def attempts(db, queue_id) -> list[NotificationLogRow]:
    async with db() as session:
        return list(
            (
                await session.scalars(
                    select(NotificationLogRow)
                    .where(NotificationLogRow.queue_id == queue_id)
                    .order_by(NotificationLogRow.attempt)
                )
            ).all()
        )


async def test_one_signed_delivery_per_subscription_with_its_most_specific_type(hooks_api, nc, db):
    async with Receiver() as receiver:
        created = await subscribe(hooks_api, receiver.url(), "ISSUE_CREATED", "HIGH_PRIORITY_ISSUE")
        secret = created["secret"]
        assert secret.startswith("whsec_") and created["kind"] == "WEBHOOK" and created["active"] is True
        listed = (await hooks_api.get(ROUTE, headers=ADMIN)).json()
        assert [item["id"] for item in listed] == [created["id"]] and "secret" not in listed[0]  # shown once only
        verifier = WebhookVerifier(secret)
        receiver.check = verifier.check

        evt = event("ISSUE_CREATED", issue=issue_dict(priority="HIGH"))  # ISSUE_CREATED + HIGH_PRIORITY_ISSUE
        outcome = await publish(nc, evt)

        assert outcome.channels["WEBHOOK"].sent == 1
        [request] = receiver.requests  # one delivery, though both of its types match
        assert receiver.answers == [200] and verifier.refusals == []
        body = request.json()
        assert body["type"] == "HIGH_PRIORITY_ISSUE" and body["event_id"] == evt.event_id
        assert body["issue"]["id"] == evt.issue.id and body["issue"]["title"] == evt.issue.title
        assert body["link"] == f"http://tracker.test/admin/issues/{evt.issue.id}"
        assert request.headers["content-type"] == "application/json"
        [row] = await hook_rows(db, created["id"])
        assert (row.status, row.recipient_id, row.delivery_method) == ("SENT", None, "WEBHOOK")
        assert request.headers["webhook-id"] == f"msg_{row.id}"

        # What a receiver must refuse: the same message again, and a timestamp from long ago.
        replay = await _resend(receiver, request.headers, request.body)
        old = str(int(datetime.now(timezone.utc).timestamp()) - 3600)
        stale_headers = request.headers | {
            "webhook-timestamp": old,
            "webhook-signature": "v1," + expected_signature(secret, request.headers["webhook-id"], old, request.body),
        }
        stale = await _resend(receiver, stale_headers, request.body)
        forged = await _resend(receiver, request.headers, request.body.replace(b"HIGH_PRIORITY", b"LOW_PRIORITY"))
        assert (replay.status_code, stale.status_code, forged.status_code) == (400, 400, 400)
        assert verifier.refusals == ["replayed", "stale timestamp", "bad signature"]


async def _resend(receiver: Receiver, headers: dict, body: bytes) -> httpx.Response:
    keep = {k: v for k, v in headers.items() if k.startswith("webhook-") or k == "content-type"}
    async with httpx.AsyncClient() as client:
        return await client.post(receiver.url(), content=body, headers=keep)


async def test_503_then_200_is_one_delivery_after_two_attempts_honouring_retry_after(hooks_api, nc, db):
    replies = [Reply(503, b"busy", {"Retry-After": "1"}), Reply(200)]
    async with Receiver(replies=replies) as receiver:
        created = await subscribe(hooks_api, receiver.url(), "ISSUE_CREATED", "HIGH_PRIORITY_ISSUE")
        verifier = WebhookVerifier(created["secret"])
        receiver.check = verifier.check

        outcome = await publish(nc, event("ISSUE_CREATED"))

        assert outcome.channels["WEBHOOK"].sent == 1
        first, second = receiver.requests
        assert receiver.answers == [503, 200] and verifier.refusals == []
        assert second.at - first.at >= 1.0  # Retry-After: 1 honoured
        assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the same message, signed afresh
        [row] = await hook_rows(db, created["id"])
        assert row.status == "SENT"
        logs = await attempts(db, row.id)
        assert [(log.attempt, log.status) for log in logs] == [(1, "FAILED"), (2, "SENT")]
        assert "503" in logs[0].error_details


async def test_410_deactivates_the_subscription_and_is_not_retried(hooks_api, nc, db):
    async with Receiver(default=Reply(410, b"gone")) as receiver:
        created = await subscribe(hooks_api, receiver.url(), "HIGH_PRIORITY_ISSUE")

        outcome = await publish(nc, event("ISSUE_CREATED"))

        assert outcome.channels["WEBHOOK"].failed == 1
        assert len(receiver.requests) == 1  # no retry
        [row] = await hook_rows(db, created["id"])
        assert row.status == "FAILED" and "410" in row.error_message and "deactivated" in row.error_message
        [item] = (await hooks_api.get(ROUTE, headers=ADMIN)).json()
        assert item["active"] is False and "410 Gone" in item["deactivated_reason"]
        async with db() as session:
            audit = (await session.scalars(select(AuditLogRow).where(AuditLogRow.action == "webhook.deactivate"))).all()
        assert [a.target for a in audit] == [created["id"]]


async def test_a_redirect_is_not_followed(hooks_api, nc, db):
    async with Receiver() as elsewhere, Receiver() as receiver:
        receiver.default = Reply(302, b"", {"Location": elsewhere.url("/stolen")})
        created = await subscribe(hooks_api, receiver.url(), "HIGH_PRIORITY_ISSUE")

        await publish(nc, event("ISSUE_CREATED"))

        [row] = await hook_rows(db, created["id"])
        assert row.status == "FAILED" and "redirect" in row.error_message
        assert len(receiver.requests) == 1 and elsewhere.connections == 0


async def test_after_a_rotation_both_secrets_verify_until_the_grace_period_ends(hooks_api, settings, db):
    async with Receiver() as receiver:
        created = await subscribe(hooks_api, receiver.url(), "ISSUE_CREATED")
        rotated = await hooks_api.post(f"{ROUTE}/{created['id']}/rotate-secret", headers=ADMIN)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != created["secret"] and new.startswith("whsec_")

        provider = WebhookProvider(settings, Subscriptions(db))
        message = OutgoingMessage(
            queue_id=str(uuid.uuid4()),
            address=created["id"],
            recipient_name=None,
            subject="s",
            text='{"type":"ISSUE_CREATED"}',
            html=None,
            issue_id=None,
            link=None,
            unsubscribe_url=None,
            notification_type="ISSUE_CREATED",
        )
        try:
            await provider.send(message, sent_at=datetime.now(timezone.utc))
            async with db.begin() as session:  # the grace period is over
                row = await session.get(WebhookSubscriptionRow, uuid.UUID(created["id"]))
                row.previous_secret_expires_at = datetime.now(timezone.utc)
            await provider.send(message, sent_at=datetime.now(timezone.utc))
        finally:
            await provider.close()

        during, after = receiver.requests
        assert len(during.headers["webhook-signature"].split()) == 2
        for secret in (created["secret"], new):
            assert WebhookVerifier(secret).problem(during) is None
        assert WebhookVerifier(new).problem(after) is None
        assert WebhookVerifier(created["secret"]).problem(after) == "bad signature"


async def test_refused_urls_are_refused_again_at_send_time_without_a_connection(nc, db, monkeypatch):
    """Rows saved before a rule tightened, or written around the API: the worker checks each send itself."""
    from notiflow import outbound

    async def resolve(host: str, port: int) -> list[str]:
        return {"private.test": ["10.0.0.5"]}[host]

    monkeypatch.setattr(outbound, "resolve", resolve)
    async with Receiver() as listener:
        urls = {
            "http://169.254.169.254/latest/meta-data/": "cloud metadata",
            "http://10.0.0.1/hook": "private",
            f"http://[::ffff:127.0.0.1]:{listener.port}/hook": "IPv4-mapped",
            f"http://2130706433:{listener.port}/hook": "not a canonical IPv4",
            f"http://0177.0.0.1:{listener.port}/hook": "not a canonical IPv4",
            f"http://private.test:{listener.port}/hook": "private.test resolves to 10.0.0.5",
        }
        ids = {}
        async with db.begin() as session:
            for url in urls:
                row = WebhookSubscriptionRow(
                    name="raw",
                    channel="WEBHOOK",
                    url=url,
                    secret="whsec_" + "A" * 43,
                    notification_types=["HIGH_PRIORITY_ISSUE"],
                )
                session.add(row)
                await session.flush()
                ids[str(row.id)] = url

        outcome = await publish(nc, event("ISSUE_CREATED"))

        assert outcome.channels["WEBHOOK"].failed == len(urls)
        assert listener.connections == 0
    for subscription_id, url in ids.items():
        [row] = await hook_rows(db, subscription_id)
        assert row.status == "FAILED" and "URL refused" in row.error_message and urls[url] in row.error_message, (
            url,
            row.error_message,
        )
        assert len(await attempts(db, row.id)) == 1  # permanent: no retry
