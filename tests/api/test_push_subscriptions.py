"""The signed-in person's push subscriptions, the VAPID public key, and PUSH in the preferences grid."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from notiflow.directory import upsert_users
from notiflow.vapid import new_pair
from programs.api.app import create_app
from tests.api.helpers import asgi_client, assert_error, bearer
from tests.delivery.push_service import Browser
from tests.factories import ASSIGNEE, REPORTER

URL = "/api/v1/notifications/push-subscriptions"
PRIVATE, PUBLIC = new_pair()


@pytest.fixture
async def push_api(api_settings, db):
    async with db.begin() as session:
        await upsert_users(session, [ASSIGNEE, REPORTER])
    settings = api_settings.model_copy(update={"vapid_private_key": SecretStr(PRIVATE), "push_max_devices": 2})
    async with asgi_client(create_app(settings)) as client:
        yield client


def browser(n: int = 0) -> Browser:
    return Browser(endpoint=f"http://127.0.0.1:9/wpush/v2/device-{n}")


async def test_subscribe_list_and_unsubscribe_my_own(push_api):
    me, other = bearer(ASSIGNEE.id), bearer(REPORTER.id)
    created = await push_api.post(URL, headers={**me, "User-Agent": "Firefox/140"}, json=browser(1).json())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "WEB" and body["endpoint"].endswith("device-1") and body["user_agent"] == "Firefox/140"
    assert [s["id"] for s in (await push_api.get(URL, headers=me)).json()] == [body["id"]]
    assert (await push_api.get(URL, headers=other)).json() == []
    assert_error(await push_api.delete(f"{URL}/{body['id']}", headers=other), 404, "no push subscription")
    assert (await push_api.delete(f"{URL}/{body['id']}", headers=me)).status_code == 204
    assert (await push_api.get(URL, headers=me)).json() == []


async def test_at_most_max_devices_the_oldest_dropped(push_api):
    me = bearer(ASSIGNEE.id)
    for n in range(3):
        assert (await push_api.post(URL, headers=me, json=browser(n).json())).status_code == 201
    again = await push_api.post(URL, headers=me, json=browser(2).json())  # the same endpoint: refreshed
    assert again.status_code == 201
    endpoints = sorted(s["endpoint"].rsplit("-", 1)[1] for s in (await push_api.get(URL, headers=me)).json())
    assert endpoints == ["1", "2"]


async def test_a_private_address_endpoint_is_refused_naming_the_reason(push_api):
    subscription = Browser(endpoint="https://10.1.2.3/wpush/v2/x").json()
    assert_error(
        await push_api.post(URL, headers=bearer(ASSIGNEE.id), json=subscription), 422, "endpoint refused", "private"
    )
    metadata = Browser(endpoint="http://169.254.169.254/latest").json()
    assert_error(await push_api.post(URL, headers=bearer(ASSIGNEE.id), json=metadata), 422, "endpoint refused")


async def test_malformed_keys_are_refused(push_api):
    subscription = browser().json()
    subscription["keys"]["p256dh"] = "AAAA"
    response = await push_api.post(URL, headers=bearer(ASSIGNEE.id), json=subscription)
    assert response.status_code == 422 and "P-256" in response.text


async def test_the_vapid_public_key_and_push_in_the_preferences_only_with_a_subscription(push_api, api):
    me = bearer(ASSIGNEE.id)
    assert (await push_api.get("/api/v1/notifications/push/vapid-public-key", headers=me)).json() == {
        "public_key": PUBLIC
    }
    assert_error(await api.get("/api/v1/notifications/push/vapid-public-key", headers=me), 404, "VAPID")

    def push_cells(settings_body: dict) -> list[dict]:
        return [p for p in settings_body["preferences"] if p["channel"] == "PUSH"]

    prefs = "/api/v1/notifications/preferences"
    assert push_cells((await push_api.get(prefs, headers=me)).json()) == []
    switch_on = {"preferences": [{"notification_type": "ISSUE_ASSIGNED", "channel": "PUSH", "enabled": True}]}
    assert_error(await push_api.put(prefs, headers=me, json=switch_on), 422, "PUSH is not available", "subscription")
    await push_api.post(URL, headers=me, json=browser().json())
    cells = push_cells((await push_api.get(prefs, headers=me)).json())
    assert len(cells) == 12 and not any(c["enabled"] for c in cells)  # offered, off until switched on
    changed = await push_api.put(prefs, headers=me, json=switch_on)
    assert changed.status_code == 200, changed.text
    on = [c["notification_type"] for c in push_cells(changed.json()) if c["enabled"]]
    assert on == ["ISSUE_ASSIGNED"]
    assert_error(await api.put(prefs, headers=me, json=switch_on), 422, "NOTIFLOW_VAPID_PRIVATE_KEY")


async def test_a_phone_registers_its_fcm_token_only_where_fcm_is_configured(push_api, api_settings, db):
    me = bearer(ASSIGNEE.id)
    assert_error(
        await push_api.post(URL, headers=me, json={"kind": "FCM", "token": "abc:DEF-1"}), 422, "FCM is not configured"
    )
    account = '{"client_email": "n@p.iam.gserviceaccount.com", "private_key": "x", "token_uri": "https://oauth2.googleapis.com/token"}'
    settings = api_settings.model_copy(update={"fcm_project_id": "p", "fcm_service_account": SecretStr(account)})
    async with asgi_client(create_app(settings)) as client:
        created = await client.post(URL, headers=me, json={"kind": "FCM", "token": "abc:DEF-1"})
        assert created.status_code == 201, created.text
        assert created.json()["kind"] == "FCM" and created.json()["endpoint"] == "abc:DEF-1"
        assert (await client.post(URL, headers=me, json={"kind": "APNS", "token": "x"})).status_code == 422


async def test_an_iphone_registers_its_apns_token_only_where_apns_is_configured(push_api, api_settings, db):
    me = bearer(ASSIGNEE.id)
    token = "0A1B" * 16
    assert_error(
        await push_api.post(URL, headers=me, json={"kind": "APNS", "token": token}), 422, "APNs is not configured"
    )
    settings = api_settings.model_copy(
        update={
            "apns_team_id": "TEAM123456",
            "apns_key_id": "KEY7890ABC",
            "apns_private_key": SecretStr("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"),
            "apns_topic": "test.notiflow.tracker",
        }
    )
    async with asgi_client(create_app(settings)) as client:
        created = await client.post(URL, headers=me, json={"kind": "APNS", "token": token})
        assert created.status_code == 201, created.text
        assert created.json()["kind"] == "APNS" and created.json()["endpoint"] == token.lower()
        for bad in ("x", "abc", "zz" * 32):
            assert (await client.post(URL, headers=me, json={"kind": "APNS", "token": bad})).status_code == 422
