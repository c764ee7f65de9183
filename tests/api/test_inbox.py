"""The in-app inbox: listing with unread count, read/unread/archive, only one's own."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert

from notiflow.models import InAppNotificationRow
from tests.api.helpers import add_users, assert_error, bearer, person
from tests.factories import SESSION_START

URL = "/api/v1/notifications/inbox"
#: Rows are stamped relative to the session's clock, like every time the server compares with now.
T0 = SESSION_START
ME = bearer("u-1")


async def deliver(db, user_id: str = "u-1", count: int = 1, **fields) -> list[str]:
    """In-app notifications as the deliver activity writes them; returns their ids, oldest first."""
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "notification_type": "ISSUE_ASSIGNED",
            "issue_id": "ISS-42",
            "title": f"title {n}",
            "body": f"body {n}",
            "link": "http://tracker.test/admin/issues/ISS-42",
            "created_at": T0 + timedelta(minutes=n),
            **fields,
        }
        for n in range(count)
    ]
    async with db.begin() as session:
        await session.execute(insert(InAppNotificationRow), rows)
    return [str(row["id"]) for row in rows]


async def test_lists_my_notifications_newest_first_with_unread_count(api, db):
    await add_users(db, person("u-1"), person("u-2"))
    mine = await deliver(db, "u-1", 5)
    await deliver(db, "u-2", 2)
    first = (await api.get(URL, headers=ME, params={"limit": 3})).json()
    assert [item["id"] for item in first["items"]] == mine[::-1][:3]
    assert first["unread_count"] == 5
    second = (await api.get(URL, headers=ME, params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert [item["id"] for item in second["items"]] == mine[::-1][3:]
    assert second["next_cursor"] is None
    assert first["items"][0] | {"id": None} == {
        "id": None,
        "notification_type": "ISSUE_ASSIGNED",
        "issue_id": "ISS-42",
        "title": "title 4",
        "body": "body 4",
        "link": "http://tracker.test/admin/issues/ISS-42",
        "created_at": f"{T0 + timedelta(minutes=4):%Y-%m-%dT%H:%M:%SZ}",
        "read_at": None,
        "archived_at": None,
    }


async def test_read_unread_read_all_and_the_count(api, db):
    await add_users(db, person("u-1"))
    ids = await deliver(db, count=3)
    read = (await api.post(f"{URL}/{ids[0]}/read", headers=ME)).json()
    assert read["read_at"] is not None
    again = (await api.post(f"{URL}/{ids[0]}/read", headers=ME)).json()
    assert again["read_at"] == read["read_at"]  # reading twice keeps the first time
    assert (await api.get(f"{URL}/unread-count", headers=ME)).json() == {"unread_count": 2}
    assert (await api.post(f"{URL}/{ids[0]}/unread", headers=ME)).json()["read_at"] is None
    assert (await api.post(f"{URL}/read-all", headers=ME)).json() == {"marked_read": 3, "unread_count": 0}
    assert (await api.post(f"{URL}/read-all", headers=ME)).json() == {"marked_read": 0, "unread_count": 0}
    assert (await api.get(URL, headers=ME)).json()["unread_count"] == 0


async def test_archive_hides_unless_asked(api, db):
    await add_users(db, person("u-1"))
    ids = await deliver(db, count=2)
    archived = (await api.post(f"{URL}/{ids[1]}/archive", headers=ME)).json()
    assert archived["archived_at"] is not None
    listing = (await api.get(URL, headers=ME)).json()
    assert [item["id"] for item in listing["items"]] == [ids[0]]
    assert listing["unread_count"] == 1  # archived items do not count as unread
    everything = (await api.get(URL, headers=ME, params={"include_archived": True})).json()
    assert [item["id"] for item in everything["items"]] == ids[::-1]


async def test_someone_elses_or_unknown_notification_is_404(api, db):
    await add_users(db, person("u-1"), person("u-2"))
    [theirs] = await deliver(db, "u-2")
    for action in ("read", "unread", "archive"):
        assert_error(await api.post(f"{URL}/{theirs}/{action}", headers=ME), 404, f"{theirs} is not in your inbox")
    unknown = uuid.uuid4()
    assert_error(await api.post(f"{URL}/{unknown}/read", headers=ME), 404, "not in your inbox")
    assert_error(await api.post(f"{URL}/not-an-id/read", headers=ME), 422, "path parameter notification_id")
    listing = (await api.get(URL, headers=bearer("u-2"))).json()
    assert listing["items"][0]["read_at"] is None and listing["unread_count"] == 1


async def test_inbox_needs_a_token(api):
    for response in (
        await api.get(URL),
        await api.get(f"{URL}/unread-count"),
        await api.post(f"{URL}/read-all"),
        await api.post(f"{URL}/{uuid.uuid4()}/read"),
        await api.get(f"{URL}/stream"),
    ):
        assert_error(response, 401)
    assert_error(await api.get(URL, headers=ME, params={"cursor": "%%%"}), 422, "cursor")
