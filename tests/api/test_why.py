"""GET /notifications/why: for an issue and a person, every event and each channel's decision."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert
from temporalio.testing import ActivityEnvironment

from activities.delivery.activities import DeliveryActivities
from notiflow.contracts import IssueEvent
from notiflow.models import NotificationPreferenceRow
from notiflow.runs import NotificationRequest
from tests.api.helpers import ADMIN, SERVICE, add_users, assert_error, bearer
from tests.api.test_queue import fill, queued
from tests.factories import ADMIN_EN, ASSIGNEE, DIRECTORY, event_dict, issue_dict, ref

WHY = "/api/v1/notifications/why"


async def test_why_needs_an_admin(api):
    assert_error(await api.get(WHY, params={"issue_id": "ISS-1", "user_id": "u-1"}, headers=bearer("u-1")), 403)
    assert (await api.get(WHY, params={"issue_id": "ISS-1"}, headers=ADMIN)).status_code == 422


@pytest.mark.usefixtures("worker")
async def test_why_tells_sent_skipped_and_not_in_the_audience(temporal_api, db):
    await add_users(db, *DIRECTORY)
    # The assignee opted out of assignment e-mails.
    opted_out = await temporal_api.put(
        "/api/v1/notifications/preferences",
        headers=bearer(ASSIGNEE.id),
        json={"preferences": [{"notification_type": "ISSUE_ASSIGNED", "channel": "EMAIL", "enabled": False}]},
    )
    assert opted_out.status_code == 200, opted_out.text
    issue = issue_dict(assignee=ref(ASSIGNEE), priority="MEDIUM")
    assigned = event_dict("ISSUE_ASSIGNED", issue=issue, actor=ADMIN_EN)
    assert (await temporal_api.post("/api/v1/events", headers=SERVICE, json=assigned)).status_code == 202

    params = {"issue_id": issue["id"], "user_id": ASSIGNEE.id}
    deadline = time.monotonic() + 20
    while True:
        answer = (await temporal_api.get(WHY, params=params, headers=ADMIN)).json()
        decisions = {d["channel"]: d for e in answer["events"] for d in e["decisions"]}
        if decisions.get("IN_APP", {}).get("decision") == "sent":
            break
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.2)
    (event,) = answer["events"]
    assert (event["event_id"], event["event_type"], event["actor_id"]) == (
        assigned["event_id"],
        "ISSUE_ASSIGNED",
        ADMIN_EN.id,
    )
    assert event["workflow_url"].endswith(assigned["event_id"])
    assert decisions["EMAIL"]["decision"] == "skipped" and "preferences" in decisions["EMAIL"]["reason"]
    assert decisions["IN_APP"]["attempts"] >= 1 and decisions["IN_APP"]["at"]

    actor = (await temporal_api.get(WHY, params={**params, "user_id": ADMIN_EN.id}, headers=ADMIN)).json()
    assert actor["events"][0]["decisions"] == [] and "actor" in actor["events"][0]["note"]
    stranger = (await temporal_api.get(WHY, params={**params, "user_id": "u-nobody"}, headers=ADMIN)).json()
    assert stranger["user_known"] is False


# ------------------------------------------------------------------ what was decided then, not what today would


async def _plan(db, settings, event: dict) -> None:
    """Plan one event as the worker does (the plan activity), without sending anything."""
    activities = DeliveryActivities(db, settings)
    try:
        await ActivityEnvironment().run(
            activities.plan_deliveries,
            NotificationRequest(
                source_id=event["event_id"],
                event=IssueEvent.model_validate(event),
                workflow_id=f"event/{event['event_id']}",
            ),
        )
    finally:
        await activities.close()


async def _why(api, issue_id: str, user_id: str) -> dict[tuple[str | None, str], dict]:
    response = await api.get(WHY, params={"issue_id": issue_id, "user_id": user_id}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return {(e["event_id"], d["channel"]): d for e in response.json()["events"] for d in e["decisions"]}


async def test_a_row_held_by_quiet_hours_says_so_after_the_hours_change(api, db, api_settings):
    now = datetime.now(timezone.utc)
    held_until = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    sleeper = ASSIGNEE.model_copy(
        update={
            "timezone": "UTC",
            "quiet_hours_start": f"{now - timedelta(hours=1):%H:%M}",
            "quiet_hours_end": f"{held_until:%H:%M}",
        }
    )
    await add_users(db, ADMIN_EN, sleeper)
    issue = issue_dict(assignee=ref(ASSIGNEE), priority="MEDIUM")
    assigned = event_dict("ISSUE_ASSIGNED", issue=issue, actor=ADMIN_EN)
    await _plan(db, api_settings, assigned)

    # Since then the person dropped their quiet hours and switched e-mail to a daily digest.
    await add_users(db, ASSIGNEE.model_copy(update={"timezone": "UTC"}))
    async with db.begin() as session:
        await session.execute(
            insert(NotificationPreferenceRow).values(
                user_id=ASSIGNEE.id, notification_type="ISSUE_ASSIGNED", delivery_method="EMAIL", frequency="DAILY"
            )
        )

    mail = (await _why(api, issue["id"], ASSIGNEE.id))[(assigned["event_id"], "EMAIL")]
    assert mail["decision"] == "held" and mail["status"] == "PENDING"
    assert datetime.fromisoformat(mail["at"]) == held_until
    assert mail["reason"] == f"quiet hours until {held_until.isoformat()}"
    assert mail["recorded"]["outcome"] == "HELD"
    assert datetime.fromisoformat(mail["recorded"]["held_until"]) == held_until

    # The queue API shows the same stored decision.
    listed = await api.get("/api/v1/notifications/queue", headers=ADMIN, params={"outcome": "HELD"})
    assert listed.status_code == 200, listed.text
    assert {item["channel"] for item in listed.json()["items"]} == {"EMAIL", "IN_APP"}
    assert all(item["decision"]["reason"].startswith("quiet hours until") for item in listed.json()["items"])


async def test_a_rate_capped_row_says_rate_capped_after_the_cap_and_the_preferences_change(api, db, api_settings):
    await add_users(db, ADMIN_EN, ASSIGNEE)
    capped = api_settings.model_copy(update={"max_per_hour": 1})
    issue = issue_dict(assignee=ref(ASSIGNEE), priority="MEDIUM")
    first = event_dict("ISSUE_ASSIGNED", issue=issue, actor=ADMIN_EN)
    second = event_dict("ISSUE_STATUS_CHANGED", issue=issue | {"status": "IN_PROGRESS"}, actor=ADMIN_EN, minutes=1)
    await _plan(db, capped, first)
    await _plan(db, capped, second)

    # Today the person chose an hourly digest for it, and the API runs with the default cap.
    async with db.begin() as session:
        await session.execute(
            insert(NotificationPreferenceRow).values(
                user_id=ASSIGNEE.id,
                notification_type="ISSUE_STATUS_CHANGED",
                delivery_method="IN_APP",
                frequency="HOURLY",
            )
        )
    assert api_settings.max_per_hour != 1

    decisions = await _why(api, issue["id"], ASSIGNEE.id)
    assert decisions[(first["event_id"], "IN_APP")]["recorded"]["outcome"] == "SEND"
    later = decisions[(second["event_id"], "IN_APP")]
    assert later["decision"] == "rate-capped", later
    assert later["reason"].startswith("over 1 per hour: moved to the hourly digest")
    assert later["recorded"]["frequency"] == "HOURLY"

    analytics = (await api.get("/api/v1/notifications/analytics", headers=ADMIN)).json()
    assert analytics["decisions"]["RATE_CAPPED"] == 2  # the assignee's two channels; the reporter was told


async def test_a_row_stored_before_decisions_were_says_so(api, db):
    await fill(db, [queued(0, status="PENDING", recipient_id="u-1", issue_id="ISS-OLD")])
    (old,) = (await _why(api, "ISS-OLD", "u-1")).values()
    assert old["decision"] == "pending" and old["recorded"] is None
    assert "recorded before decisions were stored" in old["reason"]
    (item,) = (await api.get("/api/v1/notifications/queue", headers=ADMIN)).json()["items"]
    assert item["decision"] is None
