"""GET /queue (filters, keyset pagination, attempts, run links) and GET /analytics."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import insert

from notiflow.models import NotificationLogRow, NotificationQueueRow
from tests.api.helpers import ADMIN, UI_URL, add_users, assert_error, bearer, person
from tests.factories import SESSION_START

QUEUE = "/api/v1/notifications/queue"
ANALYTICS = "/api/v1/notifications/analytics"
#: Rows are stamped relative to the session's clock, like every time the server compares with now.
T0 = SESSION_START


def queued(n: int, **fields) -> dict:
    """Queue row number n, created n minutes after T0."""
    return {
        "id": uuid.uuid4(),
        "recipient_id": "u-1",
        "template_name": "ISSUE_CREATED.EMAIL.en",
        "delivery_method": "EMAIL",
        "notification_type": "ISSUE_CREATED",
        "content": f"body {n}",
        "subject": f"subject {n}",
        "status": "SENT",
        "dedupe_key": f"test/{uuid.uuid4()}",
        "created_at": T0 + timedelta(minutes=n),
        "issue_id": "ISS-1",
        "event_id": f"evt-{n}",
        "workflow_id": f"event/evt-{n}",
        **fields,
    }


async def fill(db, rows: list[dict], logs: list[dict] = ()) -> None:
    await add_users(db, person("u-1"), person("u-2"))
    async with db.begin() as session:
        await session.execute(insert(NotificationQueueRow), rows)
        if logs:
            await session.execute(insert(NotificationLogRow), list(logs))


async def pages(api, **params) -> list[list[dict]]:
    """Every page of the listing, following next_cursor."""
    result, cursor = [], None
    while True:
        response = await api.get(QUEUE, headers=ADMIN, params=params | ({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        result.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return result


async def test_pages_walk_newest_first_without_gaps_or_repeats(api, db):
    same_instant = T0 + timedelta(minutes=3)
    rows = [queued(n) for n in range(7)] + [queued(3, created_at=same_instant) for _ in range(3)]
    await fill(db, rows)
    walked = await pages(api, limit=3)
    assert [len(page) for page in walked] == [3, 3, 3, 1]
    items = [item for page in walked for item in page]
    expected = sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    assert [item["id"] for item in items] == [str(r["id"]) for r in expected]


async def test_filters_combine(api, db):
    await fill(
        db,
        [
            queued(0, status="FAILED", error_message="550 mailbox unavailable"),
            queued(1, delivery_method="IN_APP"),
            queued(2, recipient_id="u-2", notification_type="ISSUE_ASSIGNED", issue_id="ISS-2"),
            queued(3, status="PENDING"),
        ],
    )

    async def subjects(**params) -> list[str]:
        return [item["subject"] for page in await pages(api, **params) for item in page]

    assert await subjects(status="FAILED") == ["subject 0"]
    assert await subjects(channel="IN_APP") == ["subject 1"]
    assert await subjects(recipient_id="u-2") == ["subject 2"]
    assert await subjects(notification_type="ISSUE_ASSIGNED", issue_id="ISS-2") == ["subject 2"]
    assert await subjects(status="SENT", channel="EMAIL") == ["subject 2"]
    window = {
        "created_from": (T0 + timedelta(minutes=1)).isoformat(),
        "created_to": (T0 + timedelta(minutes=3)).isoformat(),
    }
    assert await subjects(**window) == ["subject 2", "subject 1"]


async def test_items_carry_their_attempts_and_a_link_to_the_run(api, db):
    row = queued(0, workflow_id="event/evt 1/ü", status="SENT")
    other = queued(1)
    logs = [
        {
            "queue_id": row["id"],
            "user_id": "u-1",
            "notification_type": "ISSUE_CREATED",
            "delivery_method": "EMAIL",
            "status": "FAILED",
            "attempt": 1,
            "error_details": "421 try later",
            "created_at": T0 + timedelta(seconds=1),
        },
        {
            "queue_id": row["id"],
            "user_id": "u-1",
            "notification_type": "ISSUE_CREATED",
            "delivery_method": "EMAIL",
            "status": "SENT",
            "attempt": 2,
            "sent_at": T0 + timedelta(seconds=9),
            "created_at": T0 + timedelta(seconds=9),
        },
    ]
    await fill(db, [row, other], logs)
    [[newer, older]] = await pages(api)
    assert newer["attempts"] == []
    assert [(a["attempt"], a["status"], a["error_details"]) for a in older["attempts"]] == [
        (1, "FAILED", "421 try later"),
        (2, "SENT", None),
    ]
    assert older["workflow_url"] == f"{UI_URL}/namespaces/default/workflows/{quote('event/evt 1/ü', safe='')}"
    assert older["workflow_url"].endswith("/event%2Fevt%201%2F%C3%BC")
    assert (older["channel"], older["status"], older["recipient_id"]) == ("EMAIL", "SENT", "u-1")


async def test_bad_filters_and_cursors_are_422(api):
    assert_error(await api.get(QUEUE, headers=ADMIN, params={"status": "LOST"}), 422, "query parameter status")
    assert_error(await api.get(QUEUE, headers=ADMIN, params={"limit": 1000}), 422, "query parameter limit")
    assert_error(await api.get(QUEUE, headers=ADMIN, params={"cursor": "bm9wZQ"}), 422, "cursor is not valid")
    assert_error(
        await api.get(QUEUE, headers=ADMIN, params={"created_from": "2026-11-25T08:00:00"}),
        422,
        "created_from",
        "timezone",
    )


async def test_queue_is_for_admins(api):
    assert_error(await api.get(QUEUE), 401)
    assert_error(await api.get(QUEUE, headers=bearer("u-1")), 403, "admin")


async def test_analytics_counts_rates_and_median_time_to_send(api, db):
    def sent_after(n: int, seconds: int, **fields) -> dict:
        return queued(n, sent_at=T0 + timedelta(minutes=n, seconds=seconds), **fields)

    await fill(
        db,
        [
            sent_after(0, 10),
            sent_after(1, 20),
            sent_after(2, 60),
            queued(3, status="FAILED"),
            sent_after(4, 2, delivery_method="IN_APP"),
            queued(5, status="PENDING", delivery_method="IN_APP", notification_type="ISSUE_ASSIGNED"),
            queued(60 * 24 * 30, status="FAILED"),  # outside the window
        ],
    )
    response = await api.get(
        ANALYTICS,
        headers=ADMIN,
        params={"created_from": T0.isoformat(), "created_to": (T0 + timedelta(days=1)).isoformat()},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["total"], report["sent"], report["failed"]) == (6, 4, 1)
    assert report["success_rate"] == 0.8
    assert report["median_seconds_to_send"] == 15.0
    assert report["by_channel"] == [
        {"channel": "EMAIL", "sent": 3, "failed": 1, "success_rate": 0.75, "median_seconds_to_send": 20.0},
        {"channel": "IN_APP", "sent": 1, "failed": 0, "success_rate": 1.0, "median_seconds_to_send": 2.0},
    ]
    assert {"notification_type": "ISSUE_CREATED", "channel": "EMAIL", "status": "SENT", "count": 3} in report["counts"]
    assert len(report["counts"]) == 4


async def test_analytics_defaults_to_the_last_week_and_checks_the_range(api):
    report = (await api.get(ANALYTICS, headers=ADMIN)).json()
    assert (report["total"], report["success_rate"], report["median_seconds_to_send"]) == (0, None, None)
    span = datetime.fromisoformat(report["created_to"]) - datetime.fromisoformat(report["created_from"])
    assert span == timedelta(days=7)
    backwards = {"created_from": T0.isoformat(), "created_to": (T0 - timedelta(days=1)).isoformat()}
    assert_error(await api.get(ANALYTICS, headers=ADMIN, params=backwards), 422, "created_from must be before")
    assert_error(await api.get(ANALYTICS, headers=bearer("u-1")), 403)


async def test_a_time_without_a_utc_equivalent_is_422_about_the_field_not_the_driver(api):
    for url, field in ((QUEUE, "created_from"), (ANALYTICS, "created_to"), ("/api/v1/notifications/audit", "at_from")):
        response = await api.get(url, headers=ADMIN, params={field: "0001-01-01T00:00:00+01:00"})
        body = assert_error(response, 422, field, "out of range")
        assert "query argument" not in body["detail"] and "datetime.datetime" not in body["detail"]


async def test_a_value_the_database_refuses_is_422_without_the_drivers_words(api):
    response = await api.get(QUEUE, headers=ADMIN, params={"recipient_id": "u-\x00"})
    body = assert_error(response, 422, "cannot be stored", "NUL")
    assert "0x00" not in body["detail"] and "UTF8" not in body["detail"]
