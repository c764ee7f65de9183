"""GET/PUT /preferences: the effective matrix, settings on the user, critical types that stay on."""

from __future__ import annotations

import time

from notiflow.contracts import CRITICAL_TYPES, DEFAULT_CHANNELS, NotificationType
from programs.api.schemas import MAX_PREFERENCES
from tests.api.helpers import add_users, assert_error, bearer, person

URL = "/api/v1/notifications/preferences"


def entry(settings: dict, notification_type: str, channel: str) -> dict:
    return next(
        p for p in settings["preferences"] if (p["notification_type"], p["channel"]) == (notification_type, channel)
    )


async def test_defaults_cover_every_type_on_the_default_channels(api, db):
    await add_users(db, person("u-1", locale="fr"))
    response = await api.get(URL, headers=bearer("u-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["user_id"], body["locale"], body["quiet_hours"]) == ("u-1", "fr", None)
    assert body["timezone"] == "Indian/Antananarivo"  # the system default
    assert len(body["preferences"]) == len(NotificationType) * len(DEFAULT_CHANNELS)
    assert all(p["enabled"] and p["frequency"] == "IMMEDIATE" and not p["customized"] for p in body["preferences"])
    assert {p["notification_type"] for p in body["preferences"] if p["critical"]} == set(CRITICAL_TYPES)
    # What a settings screen shows beside a locked switch: the same reason a refused change gives.
    assert all(
        ("is critical" in p["locked_reason"]) if p["critical"] else p["locked_reason"] is None
        for p in body["preferences"]
    )


async def test_put_changes_preferences_and_personal_settings(api, db):
    await add_users(db, person("u-1"))
    response = await api.put(
        URL,
        headers=bearer("u-1"),
        json={
            "timezone": "Europe/Paris",
            "locale": "fr",
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "preferences": [
                {"notification_type": "ISSUE_COMMENT_ADDED", "channel": "EMAIL", "enabled": False},
                {"notification_type": "ISSUE_CREATED", "channel": "EMAIL", "frequency": "DAILY", "digest_hour": 8},
                {"notification_type": "ISSUE_ASSIGNED", "channel": "SMS", "enabled": True},
            ],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["timezone"], body["locale"], body["quiet_hours"]) == (
        "Europe/Paris",
        "fr",
        {"start": "22:00", "end": "07:00"},
    )
    assert entry(body, "ISSUE_COMMENT_ADDED", "EMAIL")["enabled"] is False
    assert entry(body, "ISSUE_CREATED", "EMAIL") == {
        "notification_type": "ISSUE_CREATED",
        "channel": "EMAIL",
        "enabled": True,
        "frequency": "DAILY",
        "digest_hour": 8,
        "critical": False,
        "locked_reason": None,
        "customized": True,
    }
    assert entry(body, "ISSUE_ASSIGNED", "SMS")["customized"] is True
    assert body == (await api.get(URL, headers=bearer("u-1"))).json()


async def test_put_changes_only_what_it_names(api, db):
    await add_users(db, person("u-1", timezone="Europe/Paris", quiet_hours_start="22:00", quiet_hours_end="06:00"))
    await api.put(
        URL,
        headers=bearer("u-1"),
        json={"preferences": [{"notification_type": "ISSUE_CREATED", "channel": "IN_APP", "enabled": False}]},
    )
    response = await api.put(
        URL,
        headers=bearer("u-1"),
        json={
            "quiet_hours": None,
            "preferences": [{"notification_type": "ISSUE_CREATED", "channel": "EMAIL", "frequency": "HOURLY"}],
        },
    )
    body = response.json()
    assert body["timezone"] == "Europe/Paris" and body["quiet_hours"] is None
    assert entry(body, "ISSUE_CREATED", "IN_APP")["enabled"] is False
    assert entry(body, "ISSUE_CREATED", "EMAIL")["frequency"] == "HOURLY"


async def test_turning_off_a_critical_type_is_refused_with_the_reason(api, db):
    await add_users(db, person("u-1"))
    for change in ({"enabled": False}, {"frequency": "HOURLY"}):
        response = await api.put(
            URL,
            headers=bearer("u-1"),
            json={"preferences": [{"notification_type": "SYSTEM_ERROR_SPIKE", "channel": "EMAIL", **change}]},
        )
        body = assert_error(response, 422, "SYSTEM_ERROR_SPIKE is critical", "cannot be turned off")
        assert body["errors"][0]["field"] == "preferences[0]"
    assert all(p["enabled"] for p in (await api.get(URL, headers=bearer("u-1"))).json()["preferences"])


async def test_invalid_fields_are_422_naming_the_field(api, db):
    await add_users(db, person("u-1"))
    cases = [
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start", "pattern"),
        ({"preferences": [{"notification_type": "NOPE", "channel": "EMAIL"}]}, "preferences[0].notification_type", ""),
        ({"preferences": [{"notification_type": "ISSUE_CREATED", "channel": "SLACK"}]}, "preferences[0].channel", ""),
        (
            {"preferences": [{"notification_type": "ISSUE_CREATED", "channel": "EMAIL", "frequency": "DAILY"}]},
            "preferences[0]",
            "digest_hour",
        ),
        (
            {"preferences": [{"notification_type": "ISSUE_CREATED", "channel": "EMAIL", "digest_hour": 3}]},
            "preferences[0]",
            "only when frequency is DAILY",
        ),
        ({"preferences": [{"notification_type": "ISSUE_CREATED", "channel": "EMAIL"}] * 2}, "", "repeated"),
        ({"colour": "blue"}, "colour", "Extra inputs"),
    ]
    for body, field, message in cases:
        response = await api.put(URL, headers=bearer("u-1"), json=body)
        error = assert_error(response, 422, message)
        assert error["errors"][0]["field"] == field, error
        if field:
            assert field in error["detail"]


async def test_a_flood_of_entries_is_refused_at_once_naming_the_bound(api, db):
    await add_users(db, person("u-1"))
    flood = {
        "preferences": [{"notification_type": "ISSUE_CREATED", "channel": "EMAIL"}] * 15_000
    }  # under NOTIFLOW_MAX_BODY_BYTES
    started = time.perf_counter()
    response = await api.put(URL, headers=bearer("u-1"), json=flood)
    assert time.perf_counter() - started < 2.0  # 25,000 took 6 s when each entry was compared with every other
    body = assert_error(response, 422, "preferences", f"at most {MAX_PREFERENCES} items")
    assert body["errors"][0]["field"] == "preferences"
    assert MAX_PREFERENCES == len(NotificationType) * 4  # every type × EMAIL, IN_APP, SMS, PUSH fits


async def test_someone_not_in_the_directory_gets_404_saying_how_to_sync(api):
    for response in (
        await api.get(URL, headers=bearer("u-x")),
        await api.put(URL, headers=bearer("u-x"), json={"locale": "fr"}),
    ):
        assert_error(response, 404, "user u-x is not in the directory", "PUT /api/v1/users/{id}")


async def test_preferences_need_a_token(api):
    assert_error(await api.get(URL), 401)
    assert_error(await api.put(URL, json={}), 401)
