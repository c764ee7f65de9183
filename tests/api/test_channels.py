"""Channels in the API: SMS only where a gateway is configured; national numbers stored in E.164; the queue
item names the relay or gateway that took a delivery and a critical fallback on both rows."""

from __future__ import annotations

import uuid

from notiflow.models import NotificationQueueRow
from programs.api.app import create_app
from tests.api.helpers import ADMIN, SERVICE, add_users, asgi_client, assert_error, bearer, person

PREFERENCES = "/api/v1/notifications/preferences"
SMS_ON = {"preferences": [{"notification_type": "ISSUE_ASSIGNED", "channel": "SMS", "enabled": True}]}


async def test_sms_can_be_chosen_only_where_a_gateway_is_configured(api, api_settings, db):
    await add_users(db, person("u-1"))
    assert (await api.put(PREFERENCES, headers=bearer("u-1"), json=SMS_ON)).status_code == 200
    async with asgi_client(create_app(api_settings.model_copy(update={"sms_url": None}))) as without:
        assert_error(
            await without.put(PREFERENCES, headers=bearer("u-1"), json=SMS_ON),
            422,
            "SMS is not available",
            "NOTIFLOW_SMS_URL",
        )
        off = {"preferences": [{"notification_type": "ISSUE_ASSIGNED", "channel": "SMS", "enabled": False}]}
        assert (await without.put(PREFERENCES, headers=bearer("u-1"), json=off)).status_code == 200


async def test_put_users_stores_a_national_number_in_e164(api):
    body = {"id": "u-9", "name": "Soa Randria", "phone": "034 12 345 67"}
    response = await api.put("/api/v1/users/u-9", headers=SERVICE, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "+261341234567"
    assert_error(await api.put("/api/v1/users/u-9", headers=SERVICE, json=body | {"phone": "12"}), 422, "phone")


async def test_queue_items_name_the_provider_and_the_fallback(api, db):
    await add_users(db, person("u-1"))
    failed, sent = uuid.uuid4(), uuid.uuid4()
    common = {
        "recipient_id": "u-1",
        "template_name": "AUTO_ISSUE_DETECTED.EMAIL.en",
        "notification_type": "AUTO_ISSUE_DETECTED",
        "content": "x",
    }
    async with db.begin() as session:
        session.add_all(
            [
                NotificationQueueRow(
                    id=failed,
                    delivery_method="EMAIL",
                    status="FAILED",
                    dedupe_key="k|EMAIL",
                    provider="smtp:fallback relay.test:25",
                    context_data={"critical": True, "fallback_to": {"channel": "SMS", "queue_id": str(sent)}},
                    **common,
                ),
                NotificationQueueRow(
                    id=sent,
                    delivery_method="SMS",
                    status="SENT",
                    dedupe_key="k|SMS",
                    provider="sms:json gateway.test",
                    context_data={"critical": True, "fallback_of": str(failed)},
                    **common,
                ),
            ]
        )
    response = await api.get("/api/v1/notifications/queue", headers=ADMIN)
    assert response.status_code == 200, response.text
    items = {item["channel"]: item for item in response.json()["items"]}
    assert (items["EMAIL"]["provider"], items["EMAIL"]["fallback_to"]) == ("smtp:fallback relay.test:25", str(sent))
    assert (items["SMS"]["provider"], items["SMS"]["fallback_of"]) == ("sms:json gateway.test", str(failed))
