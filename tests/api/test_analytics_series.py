"""GET /notifications/analytics/series: per day volume, success, p50/p95 time to send, diversions, failure reasons."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert

from notiflow.models import NotificationPreferenceRow
from tests.api.helpers import ADMIN, add_users, bearer, person
from tests.api.test_queue import fill, queued
from tests.factories import SESSION_START

SERIES = "/api/v1/notifications/analytics/series"
#: Stored rows are stamped relative to the session's clock (a month back, at 09:00 UTC so no row crosses midnight).
DAY = SESSION_START.replace(hour=9, minute=0) - timedelta(days=30)


def day(days: int) -> str:
    """The calendar day ``days`` after DAY, as the series names it."""
    return (DAY + timedelta(days=days)).date().isoformat()


def at(days: int, minutes: int = 0) -> datetime:
    return DAY + timedelta(days=days, minutes=minutes)


async def test_series_per_day(api, db):
    rows = [
        queued(0, created_at=at(0), sent_at=at(0) + timedelta(seconds=2)),
        queued(1, created_at=at(0, 5), sent_at=at(0, 5) + timedelta(seconds=4)),
        queued(2, created_at=at(0, 9), status="FAILED", error_message="550 mailbox unavailable"),
        queued(3, created_at=at(1), status="FAILED", error_message="550 mailbox unavailable"),
        queued(
            4,
            created_at=at(1, 1),
            delivery_method="IN_APP",
            status="PENDING",
            context_data={"digest": "HOURLY"},
            decision={"outcome": "RATE_CAPPED", "reason": "over 20 per hour", "frequency": "HOURLY"},
        ),
        queued(
            5,
            created_at=at(1, 2),
            recipient_id="u-2",
            status="PENDING",
            context_data={"digest": "DAILY"},
            decision={"outcome": "DIGESTED", "reason": "daily digest chosen by the person", "frequency": "DAILY"},
        ),
        # Stored before decisions were: in a digest, whether chosen or capped is not known (counted as digested).
        queued(6, created_at=at(1, 3), status="PENDING", context_data={"digest": "HOURLY"}),
    ]
    attempt = {
        "notification_type": "ISSUE_CREATED",
        "delivery_method": "EMAIL",
        "status": "FAILED",
        "error_details": "550 mailbox unavailable",
    }
    logs = [
        {**attempt, "queue_id": rows[2]["id"], "attempt": 1, "created_at": at(0, 9)},
        {**attempt, "queue_id": rows[3]["id"], "attempt": 1, "created_at": at(1)},
        {**attempt, "queue_id": rows[0]["id"], "attempt": 1, "created_at": at(0), "error_details": "421 try later"},
        {
            **attempt,
            "queue_id": rows[0]["id"],
            "attempt": 2,
            "created_at": at(0),
            "status": "SENT",
            "error_details": None,
        },
    ]
    await fill(db, rows, logs)
    # Today u-1 chose an hourly digest: the rate-capped row stays rate-capped (what was decided then).
    async with db.begin() as session:
        await session.execute(
            insert(NotificationPreferenceRow).values(
                user_id="u-1", notification_type="ISSUE_CREATED", delivery_method="IN_APP", frequency="HOURLY"
            )
        )
    response = await api.get(SERIES, headers=ADMIN, params={"days": 3, "created_to": at(2).isoformat()})
    assert response.status_code == 200, response.text
    body = response.json()
    # Every day the window touches, empty ones too (the chart's x axis).
    assert [d["day"] for d in body["days"]] == [day(-1), day(0), day(1), day(2)]
    first = next(d for d in body["days"] if d["day"] == day(0))
    assert (first["sent"], first["failed"]) == (2, 1) and abs(first["success_rate"] - 2 / 3) < 1e-9
    assert first["p50_seconds_to_send"] == 3.0 and 3.0 < first["p95_seconds_to_send"] <= 4.0
    second = next(d for d in body["days"] if d["day"] == day(1))
    assert (second["rate_capped"], second["digested"]) == (1, 2)  # as stored on the rows, not today's choices
    assert {(v["day"], v["channel"], v["count"]) for v in body["volume"]} == {
        (day(0), "EMAIL", 3),
        (day(1), "EMAIL", 3),
        (day(1), "IN_APP", 1),
    }
    # Failed attempts, including one of a row sent at its second attempt.
    assert body["top_failure_reasons"] == [
        {"reason": "550 mailbox unavailable", "count": 2},
        {"reason": "421 try later", "count": 1},
    ]


async def test_series_is_for_admins(api, db):
    await add_users(db, person("u-1"))
    assert (await api.get(SERIES, headers=bearer("u-1"))).status_code == 403
    assert (await api.get(SERIES, headers=ADMIN, params={"days": 91})).status_code == 422
