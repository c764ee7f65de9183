"""GET /notifications/analytics/engagement: the funnel per type × channel and day, against real PostgreSQL."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from sqlalchemy import insert

from notiflow.models import EngagementEventRow
from tests.api.helpers import ADMIN, add_users, bearer, person
from tests.api.test_queue import fill, queued
from tests.factories import SESSION_START

FUNNEL = "/api/v1/notifications/analytics/engagement"
#: Stored rows are stamped relative to the session's clock (a month back, at 09:00 UTC so no row crosses midnight).
DAY = SESSION_START.replace(hour=9, minute=0) - timedelta(days=30)


def at(days: int, minutes: int = 0) -> datetime:
    return DAY + timedelta(days=days, minutes=minutes)


def day(days: int) -> str:
    return at(days).date().isoformat()


def row(n: int, created: datetime, *, status: str = "SENT", **fields) -> dict:
    """Queue row n, sent a second after it was created (when SENT)."""
    sent_at = created + timedelta(seconds=1) if status == "SENT" else None
    return queued(n, created_at=created, status=status, sent_at=sent_at, **fields)


def event(queue_row: dict, kind: str, after_sent: float, detail: dict | None = None) -> dict:
    occurred = (queue_row["sent_at"] or queue_row["created_at"]) + timedelta(seconds=after_sent)
    return {
        "queue_id": queue_row["id"],
        "recipient_id": queue_row["recipient_id"],
        "channel": queue_row["delivery_method"],
        "kind": kind,
        "occurred_at": occurred,
        "last_at": occurred,
        "detail": detail,
    }


async def store(db, rows: list[dict], events: list[dict]) -> None:
    await fill(db, rows)
    async with db.begin() as session:
        await session.execute(insert(EngagementEventRow), events)


def steps(items: list[dict]) -> dict[tuple, dict]:
    return {(i["day"], i["notification_type"], i["channel"]): i for i in items}


FIELDS = ("sent", "delivered", "seen", "opened", "read", "clicked", "bounced", "complained")


def counts(item: dict) -> tuple:
    return tuple(item[f] for f in FIELDS)


async def test_funnel_counts_rates_and_median_to_read(api, db):
    email, in_app = {"delivery_method": "EMAIL"}, {"delivery_method": "IN_APP"}
    r = [
        # day 0, ISSUE_CREATED × EMAIL
        row(0, at(0), **email),
        row(1, at(0, 1), **email),
        row(2, at(0, 2), status="FAILED", **email),
        row(3, at(0, 3), **email),
        # day 0, ISSUE_CREATED × IN_APP (row 7 still pending: not in the funnel yet)
        row(4, at(0, 4), **in_app),
        row(5, at(0, 5), **in_app),
        row(6, at(0, 6), **in_app),
        row(7, at(0, 7), status="PENDING", **in_app),
        # day 1
        row(8, at(1), **in_app),
        row(9, at(1, 1), notification_type="ISSUE_ASSIGNED", recipient_id="u-2", **in_app),
        # after the window
        row(10, at(3), **in_app),
    ]
    events = [
        event(r[0], "OPENED", 2, {"machine": True}),  # a proxy's prefetch: no open
        event(r[0], "CLICKED", 300),
        event(r[1], "OPENED", 60),
        event(r[1], "BOUNCED", 5, {"status": "5.1.1"}),
        event(r[3], "OPENED", 1, {"machine": True, "human_at": at(0, 30).isoformat()}),  # later opened by a person
        event(r[3], "COMPLAINED", 900),
        event(r[4], "SEEN", 30),
        event(r[4], "READ", 120),
        event(r[4], "CLICKED", 130),
        event(r[5], "SEEN", 40),
        event(r[5], "READ", 600),
        event(r[6], "SEEN", 50),
        event(r[8], "SEEN", 10),
        event(r[8], "READ", 60),
        event(r[9], "READ", 45),
        event(r[10], "READ", 5),
    ]
    await store(db, r, events)

    response = await api.get(FUNNEL, headers=ADMIN, params={"from": at(-1).isoformat(), "to": at(2).isoformat()})
    assert response.status_code == 200, response.text
    body = response.json()
    by_day = steps(body["days"])
    assert set(by_day) == {
        (day(0), "ISSUE_CREATED", "EMAIL"),
        (day(0), "ISSUE_CREATED", "IN_APP"),
        (day(1), "ISSUE_CREATED", "IN_APP"),
        (day(1), "ISSUE_ASSIGNED", "IN_APP"),
    }
    mail = by_day[(day(0), "ISSUE_CREATED", "EMAIL")]
    # sent = 3 SENT + 1 FAILED; opens: row 1, and row 3 (machine first, then a person); not row 0's machine open
    assert counts(mail) == (4, 3, 0, 2, 0, 1, 1, 1)
    assert abs(mail["bounce_rate"] - 1 / 3) < 1e-9 and abs(mail["complaint_rate"] - 1 / 3) < 1e-9
    assert mail["median_seconds_to_read"] is None

    inbox0 = by_day[(day(0), "ISSUE_CREATED", "IN_APP")]
    assert counts(inbox0) == (3, 3, 3, 0, 2, 1, 0, 0)
    assert inbox0["median_seconds_to_read"] == statistics.median([120, 600])
    assert (inbox0["bounce_rate"], inbox0["complaint_rate"]) == (0.0, 0.0)
    inbox1 = by_day[(day(1), "ISSUE_CREATED", "IN_APP")]
    assert counts(inbox1) == (1, 1, 1, 0, 1, 0, 0, 0) and inbox1["median_seconds_to_read"] == 60
    assigned = by_day[(day(1), "ISSUE_ASSIGNED", "IN_APP")]
    assert counts(assigned) == (1, 1, 0, 0, 1, 0, 0, 0) and assigned["median_seconds_to_read"] == 45

    totals = steps(body["totals"])
    assert set(totals) == {
        (None, "ISSUE_CREATED", "EMAIL"),
        (None, "ISSUE_CREATED", "IN_APP"),
        (None, "ISSUE_ASSIGNED", "IN_APP"),
    }
    inbox = totals[(None, "ISSUE_CREATED", "IN_APP")]
    assert counts(inbox) == (4, 4, 4, 0, 3, 1, 0, 0)
    # The period's median over every read, not a median of the daily medians (which would be 210).
    assert inbox["median_seconds_to_read"] == statistics.median([120, 600, 60]) == 120
    assert counts(totals[(None, "ISSUE_CREATED", "EMAIL")]) == counts(mail)

    # Filters: type and channel.
    only = await api.get(
        FUNNEL, headers=ADMIN, params={"from": at(-1).isoformat(), "to": at(2).isoformat(), "type": "ISSUE_ASSIGNED"}
    )
    assert [(s["notification_type"], s["channel"]) for s in only.json()["totals"]] == [("ISSUE_ASSIGNED", "IN_APP")]
    only = await api.get(
        FUNNEL, headers=ADMIN, params={"from": at(-1).isoformat(), "to": at(2).isoformat(), "channel": "EMAIL"}
    )
    assert [(s["day"], s["channel"]) for s in only.json()["days"]] == [(day(0), "EMAIL")]


async def test_funnel_defaults_to_the_last_14_days(api, db):
    now = SESSION_START
    r = [row(0, now - timedelta(days=1)), row(1, now - timedelta(days=13)), row(2, now - timedelta(days=15))]
    await store(db, r, [event(r[0], "CLICKED", 10)])
    response = await api.get(FUNNEL, headers=ADMIN)
    assert response.status_code == 200, response.text
    (total,) = response.json()["totals"]
    assert (total["sent"], total["clicked"]) == (2, 1)


async def test_funnel_is_for_admins_and_names_bad_params(api, db):
    await add_users(db, person("u-1"))
    assert (await api.get(FUNNEL, headers=bearer("u-1"))).status_code == 403
    cases = [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": at(1).isoformat(), "to": at(0).isoformat()}, "from"),
        ({"channel": "FAX"}, "channel"),
        ({"type": "NOT_A_TYPE"}, "type"),
        ({"from": at(0).replace(tzinfo=None).isoformat()}, "from"),  # no time zone
    ]
    for params, field in cases:
        response = await api.get(FUNNEL, headers=ADMIN, params=params)
        assert response.status_code == 422, (params, response.text)
        body = response.json()
        assert [(e["location"], e["field"]) for e in body["errors"]] == [("query", field)], body
        assert f"query parameter {field}" in body["detail"]
