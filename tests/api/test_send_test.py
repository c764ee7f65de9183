"""POST /send-test: one sample notification to one person through the real pipeline."""

from __future__ import annotations

from tests.api.helpers import ADMIN, add_users, assert_error, bearer, person

URL = "/api/v1/notifications/send-test"


async def test_send_test_by_type_starts_a_workflow(temporal_api, temporal_client, db):
    await add_users(db, person("u-1"))
    response = await temporal_api.post(
        URL, headers=ADMIN, json={"notification_type": "ISSUE_ASSIGNED", "recipient_id": "u-1", "channel": "IN_APP"}
    )
    assert response.status_code == 202, response.text
    workflow_id = response.json()["workflow_id"]
    assert response.json()["workflow_url"].endswith(workflow_id.replace("/", "%2F"))
    run = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert run.id == workflow_id


async def test_send_test_by_template_name_uses_its_type_and_channel(temporal_api, db):
    await add_users(db, person("u-1"))
    response = await temporal_api.post(
        URL, headers=ADMIN, json={"template_name": "ISSUE_RESOLVED.EMAIL.fr", "recipient_id": "u-1"}
    )
    assert response.status_code == 202, response.text


async def test_send_test_refusals(api, db):
    await add_users(db, person("u-1"))
    assert_error(
        await api.post(URL, headers=ADMIN, json={"notification_type": "ISSUE_CREATED", "recipient_id": "u-x"}),
        404,
        "user u-x is not in the directory",
    )
    assert_error(
        await api.post(URL, headers=ADMIN, json={"template_name": "NOPE.EMAIL.en", "recipient_id": "u-1"}),
        404,
        "no active template named 'NOPE.EMAIL.en'",
    )
    assert_error(
        await api.post(
            URL,
            headers=ADMIN,
            json={"template_name": "ISSUE_CREATED.EMAIL.en", "recipient_id": "u-1", "channel": "IN_APP"},
        ),
        422,
        "is for EMAIL, not IN_APP",
    )
    assert_error(
        await api.post(URL, headers=ADMIN, json={"template_name": "DIGEST.EMAIL.en", "recipient_id": "u-1"}),
        422,
        "not sent on its own",
    )
    assert_error(await api.post(URL, headers=ADMIN, json={"recipient_id": "u-1"}), 422, "exactly one of")
    assert_error(await api.post(URL, headers=ADMIN, json={"notification_type": "ISSUE_CREATED"}), 422, "recipient_id")
    assert_error(await api.post(URL, json={}), 401)
    assert_error(await api.post(URL, headers=bearer("u-1"), json={}), 403, "'admin' role")
