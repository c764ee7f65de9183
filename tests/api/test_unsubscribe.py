"""One-click unsubscribe: confirmation page, RFC 8058 POST, refusals as readable pages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from notiflow.models import NotificationPreferenceRow
from notiflow.tokens import UnsubscribeRequest, make_unsubscribe_token, unsubscribe_url
from tests.api.helpers import JWT_SECRET, add_users, bearer, person

COMMENTS_BY_EMAIL = UnsubscribeRequest("u-1", "ISSUE_COMMENT_ADDED", "EMAIL")


def path(request: UnsubscribeRequest, **kwargs) -> str:
    return f"/api/v1/notifications/unsubscribe/{make_unsubscribe_token(JWT_SECRET, request, **kwargs)}"


async def stored(db) -> list[tuple[str, str, str, bool]]:
    async with db() as session:
        rows = await session.scalars(select(NotificationPreferenceRow))
        return [(r.user_id, r.notification_type, r.delivery_method, r.is_enabled) for r in rows]


async def test_round_trip_from_the_link_in_the_mail(api, db, api_settings):
    await add_users(db, person("u-1"))
    url = unsubscribe_url(api_settings.public_api_url, JWT_SECRET, COMMENTS_BY_EMAIL)
    link = url.removeprefix(api_settings.public_api_url)

    page = await api.get(link)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "issue comment added" in page.text and f'action="{link}"' in page.text
    assert await stored(db) == []  # looking at the page changes nothing

    done = await api.post(link, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "no longer receive" in done.text
    assert await stored(db) == [("u-1", "ISSUE_COMMENT_ADDED", "EMAIL", False)]
    settings = (await api.get("/api/v1/notifications/preferences", headers=bearer("u-1"))).json()
    [choice] = [
        p for p in settings["preferences"] if (p["notification_type"], p["channel"]) == ("ISSUE_COMMENT_ADDED", "EMAIL")
    ]
    assert choice["enabled"] is False

    assert (await api.post(link)).status_code == 200  # clicking twice is harmless
    assert len(await stored(db)) == 1


async def test_an_existing_preference_is_switched_off(api, db):
    await add_users(db, person("u-1"))
    await api.put(
        "/api/v1/notifications/preferences",
        headers=bearer("u-1"),
        json={"preferences": [{"notification_type": "ISSUE_COMMENT_ADDED", "channel": "EMAIL", "frequency": "HOURLY"}]},
    )
    assert (await api.post(path(COMMENTS_BY_EMAIL))).status_code == 200
    assert await stored(db) == [("u-1", "ISSUE_COMMENT_ADDED", "EMAIL", False)]


async def test_tampered_and_expired_links_get_a_clear_400_page(api, db):
    await add_users(db, person("u-1"))
    good = path(COMMENTS_BY_EMAIL)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    expired = path(COMMENTS_BY_EMAIL, now=datetime.now(timezone.utc) - timedelta(days=61))
    for link, message in ((tampered, "not valid"), (expired, "expired")):
        for response in (await api.get(link), await api.post(link)):
            assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
            assert message in response.text
    assert await stored(db) == []


async def test_critical_types_cannot_be_unsubscribed(api, db):
    await add_users(db, person("u-1"))
    link = path(UnsubscribeRequest("u-1", "SYSTEM_ERROR_SPIKE", "EMAIL"))
    for response in (await api.get(link), await api.post(link)):
        assert response.status_code == 400 and "cannot be turned off" in response.text
    assert await stored(db) == []


async def test_someone_no_longer_in_the_directory_gets_a_404_page(api):
    response = await api.post(path(UnsubscribeRequest("u-gone", "ISSUE_CREATED", "EMAIL")))
    assert response.status_code == 404 and "no longer in our directory" in response.text


async def test_an_api_token_is_not_an_unsubscribe_link(api, db):
    await add_users(db, person("u-1"))
    api_token = bearer("u-1")["Authorization"].removeprefix("Bearer ")
    response = await api.post(f"/api/v1/notifications/unsubscribe/{api_token}")
    assert response.status_code == 400 and "not an unsubscribe link" in response.text
