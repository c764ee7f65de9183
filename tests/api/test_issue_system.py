"""The issue system's routes: POST /events (publish) and PUT /users/{id} (directory sync)."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from notiflow.client import EVENT_HASH_MEMO, EventConflict, NotificationClient, event_hash
from notiflow.contracts import parse_event
from notiflow.models import UserRow
from tests.api.helpers import ADMIN, SERVICE, UI_URL, assert_error, bearer, person
from tests.factories import event_dict

EVENTS = "/api/v1/events"


async def test_publish_starts_the_pipeline_once_per_event_id(temporal_api, temporal_client, api_settings):
    event = event_dict()
    first = await temporal_api.post(EVENTS, headers=SERVICE, json=event)
    assert first.status_code == 202, first.text
    workflow_id = f"event/{event['event_id']}"
    assert first.json() == {
        "workflow_id": workflow_id,
        "workflow_url": f"{UI_URL}/namespaces/default/workflows/event%2F{event['event_id']}",
    }
    again = await temporal_api.post(EVENTS, headers=SERVICE, json=event)
    assert again.status_code == 202 and again.json() == first.json()
    run = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert run.status == WorkflowExecutionStatus.RUNNING and run.task_queue == api_settings.task_queue


async def test_the_same_event_id_with_another_body_is_409_and_the_first_is_kept(temporal_api, temporal_client):
    event = event_dict()
    first = await temporal_api.post(EVENTS, headers=SERVICE, json=event)
    assert first.status_code == 202, first.text
    reordered = dict(reversed(list(event.items())))  # the same event, written differently
    assert (await temporal_api.post(EVENTS, headers=SERVICE, json=reordered)).json() == first.json()

    changed = event | {"issue": event["issue"] | {"title": "Another title", "priority": "CRITICAL"}}
    conflict = await temporal_api.post(EVENTS, headers=SERVICE, json=changed)
    assert_error(conflict, 409, f"event {event['event_id']}", "different body", "first one is kept")
    started = await temporal_client.get_workflow_handle(f"event/{event['event_id']}").describe()
    assert await started.memo_value(EVENT_HASH_MEMO) == event_hash(parse_event(event))  # the first body's run
    assert (await temporal_api.post(EVENTS, headers=SERVICE, json=event)).status_code == 202


async def test_the_python_client_raises_event_conflict(temporal_client, api_settings):
    client = NotificationClient(temporal_client, api_settings)
    event = event_dict()
    workflow_id = await client.publish(event)
    assert await client.publish(event) == workflow_id
    with pytest.raises(EventConflict) as caught:
        await client.publish(event | {"issue": event["issue"] | {"title": "Changed"}})
    assert (caught.value.event_id, caught.value.workflow_id) == (event["event_id"], workflow_id)
    assert event["event_id"] in str(caught.value)


async def test_an_invalid_event_is_422_naming_every_bad_field(api):
    event = event_dict()
    event["issue"].pop("priority")
    event["colour"] = "blue"
    body = assert_error(await api.post(EVENTS, headers=SERVICE, json=event), 422, "issue.priority", "colour")
    assert {(e["field"], e["location"]) for e in body["errors"]} == {("issue.priority", "body"), ("colour", "body")}
    assert_error(await api.post(EVENTS, headers=SERVICE, content=b"{not json"), 422, "invalid IssueEvent")


async def test_publish_while_temporal_is_down_is_503_naming_it(api, api_settings):
    response = await api.post(EVENTS, headers=SERVICE, json=event_dict())
    assert_error(response, 503, f"Temporal at {api_settings.temporal_address}", "NOTIFLOW_TEMPORAL_ADDRESS")


async def test_events_are_for_the_issue_system(api):
    assert_error(await api.post(EVENTS, json=event_dict()), 401)
    assert_error(await api.post(EVENTS, headers=ADMIN, json=event_dict()), 403, "'service' role")


async def test_put_user_creates_then_updates_the_directory_entry(api, db):
    entry = person(
        "u-5",
        roles=["admin"],
        locale="fr",
        timezone="Europe/Paris",
        phone="+261 34 12 345 67",
        quiet_hours_start="22:00",
        quiet_hours_end="06:30",
    ).model_dump(mode="json")
    created = await api.put("/api/v1/users/u-5", headers=SERVICE, json=entry)
    assert created.status_code == 200, created.text
    assert created.json() == entry | {"phone": "+261341234567"}

    update = {"id": "u-5", "name": "Renamed", "roles": ["staff"], "is_on_call": True}
    updated = (await api.put("/api/v1/users/u-5", headers=SERVICE, json=update)).json()
    assert (updated["name"], updated["roles"], updated["is_on_call"], updated["email"]) == (
        "Renamed",
        ["staff", "on_call"],
        True,
        None,
    )  # on call is also the on_call role
    # what the sync leaves out is what the person chose: it stays
    assert (updated["locale"], updated["timezone"], updated["quiet_hours_start"]) == ("fr", "Europe/Paris", "22:00")
    async with db() as session:
        assert (await session.get(UserRow, "u-5")).name == "Renamed"


async def test_put_user_checks_the_body(api):
    mismatch = await api.put("/api/v1/users/u-5", headers=SERVICE, json=person("u-6").model_dump(mode="json"))
    assert_error(mismatch, 422, "'u-6' differs from the URL's 'u-5'")
    for field, value in (
        ("timezone", "Nowhere/Land"),
        ("email", "not-an-email"),
        ("quiet_hours_start", "7pm"),
        ("nickname", "x"),
        ("roles", True),  # was a 500: the on-call normaliser iterated it (found by test_properties)
    ):
        response = await api.put("/api/v1/users/u-5", headers=SERVICE, json={"id": "u-5", "name": "A", field: value})
        assert_error(response, 422, field)


async def test_users_are_synced_by_the_issue_system_only(api):
    body = {"id": "u-5", "name": "A"}
    assert_error(await api.put("/api/v1/users/u-5", json=body), 401)
    assert_error(await api.put("/api/v1/users/u-5", headers=bearer("u-5"), json=body), 403, "'service' role")


async def test_a_value_postgresql_cannot_store_is_422_naming_the_field(api):
    response = await api.put("/api/v1/users/u-5", headers=SERVICE, json={"id": "u-5", "name": "nul\u0000byte"})
    assert_error(response, 422, "name", "NUL")
