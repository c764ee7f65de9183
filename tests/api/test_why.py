"""GET /notifications/why: for an issue and a person, every event and each channel's decision."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.api.helpers import ADMIN, SERVICE, add_users, assert_error, bearer
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
