"""Escalation policies: admins list and edit them (validated, audited); each answer shows a sample issue's firings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from notiflow.models import AuditLogRow, EscalationPolicyRow
from tests.api.helpers import ADMIN, assert_error, bearer

URL = "/api/v1/notifications/escalation-policies"
SEEDED_TIERS = [{"after_minutes": 120, "audience": "admins"}, {"after_minutes": 240, "audience": "on_call"}]
EDIT = {
    "due_minutes": 60,
    "tiers": [{"after_minutes": 30, "audience": "admins"}, {"after_minutes": 90, "audience": "on_call"}],
    "repeat_last": 2,
    "repeat_every_minutes": 45,
}


pytestmark = pytest.mark.usefixtures("restore_policies")


async def audit_rows(db) -> list[AuditLogRow]:
    async with db() as session:
        return list(await session.scalars(select(AuditLogRow).order_by(AuditLogRow.at)))


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_lists_the_seeded_policies_most_urgent_first(api):
    response = await api.get(URL, headers=ADMIN)
    assert response.status_code == 200, response.text
    policies = response.json()
    assert [(p["priority"], p["due_minutes"]) for p in policies] == [
        ("CRITICAL", 240),
        ("HIGH", 1440),
        ("MEDIUM", 4320),
        ("LOW", 10080),
    ]
    assert all(
        p["tiers"] == SEEDED_TIERS and (p["repeat_last"], p["repeat_every_minutes"]) == (3, 240) for p in policies
    )


async def test_each_policy_shows_the_next_firings_of_a_sample_issue_created_now(api):
    before = datetime.now(timezone.utc)
    critical = (await api.get(URL, headers=ADMIN)).json()[0]
    sample = critical["sample"]
    created = at(sample["created_at"])
    assert before <= created <= datetime.now(timezone.utc)
    assert at(sample["due_at"]) == created + timedelta(hours=4)
    assert [(at(f["at"]) - created, f["tier"], f["repeat"], f["audience"]) for f in sample["firings"]] == [
        (timedelta(hours=4), 0, 0, "assignee"),
        (timedelta(hours=6), 1, 0, "admins"),
        (timedelta(hours=8), 2, 0, "on_call"),
        (timedelta(hours=12), 2, 1, "on_call"),
        (timedelta(hours=16), 2, 2, "on_call"),
        (timedelta(hours=20), 2, 3, "on_call"),
    ]


async def test_an_admin_edits_a_policy_and_the_answer_shows_its_new_firings(api, db):
    response = await api.put(f"{URL}/HIGH", headers=ADMIN, json=EDIT)
    assert response.status_code == 200, response.text
    saved = response.json()
    assert {key: saved[key] for key in EDIT} | {"priority": saved["priority"]} == EDIT | {"priority": "HIGH"}
    created = at(saved["sample"]["created_at"])
    assert [(at(f["at"]) - created, f["audience"]) for f in saved["sample"]["firings"]] == [
        (timedelta(minutes=60), "assignee"),
        (timedelta(minutes=90), "admins"),
        (timedelta(minutes=150), "on_call"),
        (timedelta(minutes=195), "on_call"),
        (timedelta(minutes=240), "on_call"),
    ]
    listed = {p["priority"]: p for p in (await api.get(URL, headers=ADMIN)).json()}
    assert listed["HIGH"]["due_minutes"] == 60 and listed["HIGH"]["tiers"] == EDIT["tiers"]
    assert listed["LOW"]["due_minutes"] == 10080  # the others are untouched
    async with db() as session:  # what the worker's snapshot reads
        row = await session.scalar(select(EscalationPolicyRow).where(EscalationPolicyRow.priority == "HIGH"))
    assert (row.due_minutes, row.tiers, row.repeat_last, row.repeat_every_minutes) == (60, EDIT["tiers"], 2, 45)


async def test_no_tiers_means_only_the_assignee_at_the_due_time(api):
    saved = (await api.put(f"{URL}/LOW", headers=ADMIN, json={"due_minutes": 10, "tiers": [], "repeat_last": 5})).json()
    assert [f["audience"] for f in saved["sample"]["firings"]] == ["assignee"]


async def test_each_change_is_audited_with_before_and_after(api, db):
    await api.put(f"{URL}/CRITICAL", headers=bearer("u-boss", "admin"), json=EDIT)
    [entry] = await audit_rows(db)
    assert (entry.actor, entry.action, entry.target) == ("u-boss", "policy.update", "CRITICAL")
    assert entry.details == {
        "before": {"due_minutes": 240, "tiers": SEEDED_TIERS, "repeat_last": 3, "repeat_every_minutes": 240},
        "after": EDIT,
    }
    audit = (await api.get("/api/v1/notifications/audit", headers=ADMIN, params={"action": "policy.update"})).json()
    assert [item["target"] for item in audit["items"]] == ["CRITICAL"]


async def test_a_removed_policy_is_created_again_by_put(api, db):
    async with db.begin() as session:
        await session.execute(text("DELETE FROM escalation_policies WHERE priority = 'MEDIUM'"))
    assert [p["priority"] for p in (await api.get(URL, headers=ADMIN)).json()] == ["CRITICAL", "HIGH", "LOW"]
    assert (await api.put(f"{URL}/MEDIUM", headers=ADMIN, json=EDIT)).status_code == 200
    [entry] = await audit_rows(db)
    assert entry.details["before"] is None


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"due_minutes": 0}, "due_minutes", "greater than 0"),
        ({"due_minutes": -5}, "due_minutes", "greater than 0"),
        ({"repeat_every_minutes": 0}, "repeat_every_minutes", "greater than 0"),
        ({"repeat_last": -1}, "repeat_last", "greater than or equal to 0"),
        ({"tiers": [{"after_minutes": 0, "audience": "admins"}]}, "tiers[0].after_minutes", "greater than 0"),
        ({"tiers": [{"after_minutes": 10, "audience": "everyone"}]}, "tiers[0].audience", "'admins' or 'on_call'"),
        (
            {"tiers": [{"after_minutes": 90, "audience": "admins"}, {"after_minutes": 30, "audience": "on_call"}]},
            "tiers[1].after_minutes",
            "ascending",
        ),
        (
            {"tiers": [{"after_minutes": 30, "audience": "admins"}, {"after_minutes": 30, "audience": "on_call"}]},
            "tiers[1].after_minutes",
            "ascending",
        ),
        (
            {"tiers": [{"after_minutes": 10 * (n + 1), "audience": "admins"} for n in range(11)]},
            "tiers",
            "at most 10",
        ),
        ({"surprise": 1}, "surprise", "not permitted"),
    ],
)
async def test_invalid_policies_are_refused_naming_the_field(api, db, change, field, fragment):
    body = assert_error(await api.put(f"{URL}/HIGH", headers=ADMIN, json=EDIT | change), 422, field)
    assert [error["field"] for error in body["errors"]] == [field]
    assert fragment in body["errors"][0]["message"]
    assert await audit_rows(db) == []
    high = [p for p in (await api.get(URL, headers=ADMIN)).json() if p["priority"] == "HIGH"]
    assert high[0]["due_minutes"] == 1440


async def test_ten_tiers_are_allowed(api):
    tiers = [{"after_minutes": 10 * (n + 1), "audience": "on_call"} for n in range(10)]
    response = await api.put(f"{URL}/HIGH", headers=ADMIN, json=EDIT | {"tiers": tiers, "repeat_last": 0})
    assert response.status_code == 200, response.text
    assert len(response.json()["sample"]["firings"]) == 11


async def test_an_unknown_priority_is_refused(api):
    assert_error(await api.put(f"{URL}/URGENT", headers=ADMIN, json=EDIT), 422, "priority")


async def test_only_admins_read_or_edit_policies(api, db):
    user = bearer("u-1")
    assert_error(await api.get(URL, headers=user), 403)
    assert_error(await api.put(f"{URL}/HIGH", headers=user, json=EDIT), 403)
    assert_error(await api.put(f"{URL}/HIGH", headers=bearer("issue-tracker", "service"), json=EDIT), 403)
    assert_error(await api.get(URL), 401)
    assert await audit_rows(db) == []
