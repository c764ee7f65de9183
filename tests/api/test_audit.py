"""The audit trail: admin actions are recorded with who, when and what; admins read it through GET /audit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from notiflow.audit import record_audit
from notiflow.models import AuditLogRow
from tests.api.helpers import ADMIN, add_users, assert_error, bearer, person
from tests.factories import SESSION_START

AUDIT = "/api/v1/notifications/audit"
SEND_TEST = "/api/v1/notifications/send-test"
#: Rows are stamped relative to the session's clock, like every time the server compares with now.
T0 = SESSION_START


async def test_a_send_test_is_recorded_with_who_when_and_what(temporal_api, db):
    await add_users(db, person("u-1"))
    before = datetime.now(timezone.utc)
    sent = await temporal_api.post(
        SEND_TEST,
        headers=ADMIN,
        json={"notification_type": "ISSUE_ASSIGNED", "recipient_id": "u-1", "channel": "IN_APP"},
    )
    assert sent.status_code == 202, sent.text
    [entry] = (await temporal_api.get(AUDIT, headers=ADMIN)).json()["items"]
    assert (entry["actor"], entry["action"], entry["target"]) == ("u-admin", "send_test", sent.json()["workflow_id"])
    assert entry["details"] == {
        "notification_type": "ISSUE_ASSIGNED",
        "channel": "IN_APP",
        "recipient_id": "u-1",
        "template_name": None,
    }
    assert before - timedelta(seconds=5) <= datetime.fromisoformat(entry["at"]) <= datetime.now(timezone.utc)


async def test_a_refused_send_test_leaves_no_record(api, db):
    response = await api.post(
        SEND_TEST, headers=ADMIN, json={"notification_type": "ISSUE_CREATED", "recipient_id": "u-x"}
    )
    assert_error(response, 404, "u-x")
    assert (await api.get(AUDIT, headers=ADMIN)).json() == {"items": [], "next_cursor": None}


async def test_the_trail_pages_newest_first_and_filters(api, db):
    async with db.begin() as session:
        for n in range(7):
            await record_audit(
                session,
                actor=f"u-{n % 2}",
                action="template.update" if n % 3 else "send_test",
                target=f"target-{n}",
                details={"n": n},
            )
    async with db.begin() as session:  # spread them over time: entry n at T0 + n minutes
        for n in range(7):
            await session.execute(
                update(AuditLogRow).where(AuditLogRow.target == f"target-{n}").values(at=T0 + timedelta(minutes=n))
            )

    seen, cursor = [], None
    while True:
        page = await api.get(AUDIT, headers=ADMIN, params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        body = page.json()
        seen.append([item["details"]["n"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [[6, 5, 4], [3, 2, 1], [0]]

    async def numbers(**params) -> list[int]:
        response = await api.get(AUDIT, headers=ADMIN, params=params)
        assert response.status_code == 200, response.text
        return [item["details"]["n"] for item in response.json()["items"]]

    assert await numbers(action="send_test") == [6, 3, 0]
    assert await numbers(actor="u-1") == [5, 3, 1]
    assert await numbers(
        at_from=(T0 + timedelta(minutes=2)).isoformat(), at_to=(T0 + timedelta(minutes=5)).isoformat()
    ) == [4, 3, 2]
    assert await numbers(action="send_test", actor="u-0", at_from=T0.isoformat()) == [6, 0]


async def test_the_trail_is_for_admins(api):
    assert_error(await api.get(AUDIT), 401)
    assert_error(await api.get(AUDIT, headers=bearer("u-1")), 403, "'admin' role")
    assert_error(await api.get(AUDIT, headers=ADMIN, params={"cursor": "nope"}), 422, "cursor")
