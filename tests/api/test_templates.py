"""Template admin: list, create, edit (each a new version), history, preview, validation errors."""

from __future__ import annotations

import uuid

import pytest

from tests.api.helpers import ADMIN, assert_error, bearer

URL = "/api/v1/notifications/templates"

pytestmark = pytest.mark.usefixtures("restore_templates")

SMS_ASSIGNED = {
    "notification_type": "ISSUE_ASSIGNED", "channel": "SMS", "locale": "en",
    "body_template": "{{ issue.id }} is yours, {{ recipient.name }}: {{ issue.title }}",
}


async def active(api, **filters) -> list[dict]:
    response = await api.get(URL, headers=ADMIN, params=filters)
    assert response.status_code == 200, response.text
    return response.json()


async def test_lists_active_templates_filtered_by_type_channel_locale(api):
    everything = await active(api)
    assert everything and all(t["is_active"] for t in everything)
    chosen = await active(api, notification_type="ISSUE_ASSIGNED", channel="EMAIL", locale="fr")
    assert [t["name"] for t in chosen] == ["ISSUE_ASSIGNED.EMAIL.fr"]
    assert {t["locale"] for t in await active(api, locale="en")} == {"en"}
    assert {t["channel"] for t in await active(api, channel="IN_APP")} == {"IN_APP"}


async def test_create_a_new_template(api):
    response = await api.post(URL, headers=ADMIN, json=SMS_ASSIGNED | {"description": "short"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created | {"id": None, "created_at": None} == {
        "id": None, "created_at": None, "name": "ISSUE_ASSIGNED.SMS.en", "display_name": "Issue Assigned (SMS, en)",
        "description": "short", "notification_type": "ISSUE_ASSIGNED", "channel": "SMS", "locale": "en",
        "subject_template": None, "body_template": SMS_ASSIGNED["body_template"], "html_template": None,
        "version": 1, "is_active": True, "created_by": "u-admin",
    }
    assert [t["id"] for t in await active(api, channel="SMS")] == [created["id"]]


async def test_creating_over_an_active_name_keeps_the_old_version(api):
    [old] = await active(api, notification_type="ISSUE_ASSIGNED", channel="EMAIL", locale="en")
    response = await api.post(URL, headers=ADMIN, json={
        "notification_type": "ISSUE_ASSIGNED", "channel": "EMAIL", "locale": "en",
        "subject_template": "Yours now: {{ issue.title }}", "body_template": "Hello {{ recipient.name }}."})
    assert response.status_code == 201, response.text
    new = response.json()
    assert (new["version"], new["display_name"]) == (old["version"] + 1, old["display_name"])
    assert [t["id"] for t in await active(api, notification_type="ISSUE_ASSIGNED", channel="EMAIL", locale="en")] \
        == [new["id"]]
    history = (await api.get(f"{URL}/{old['id']}/versions", headers=ADMIN)).json()
    assert [(t["version"], t["is_active"]) for t in history] == [(new["version"], True), (old["version"], False)]


async def test_edit_saves_a_new_version_and_copies_what_is_left_out(api):
    first = (await api.post(URL, headers=ADMIN, json=SMS_ASSIGNED)).json()
    response = await api.put(f"{URL}/{first['id']}", headers=ADMIN,
                             json={"body_template": "{{ issue.id }} assigned to you", "display_name": "Short SMS"})
    assert response.status_code == 200, response.text
    second = response.json()
    assert (second["version"], second["is_active"], second["display_name"]) == (2, True, "Short SMS")
    assert second["body_template"] == "{{ issue.id }} assigned to you"

    # editing the first version again restores its text as version 3
    third = (await api.put(f"{URL}/{first['id']}", headers=ADMIN, json={})).json()
    assert (third["version"], third["body_template"], third["display_name"]) == (
        3, SMS_ASSIGNED["body_template"], first["display_name"])
    history = (await api.get(f"{URL}/{second['id']}/versions", headers=ADMIN)).json()
    assert [(t["version"], t["is_active"]) for t in history] == [(3, True), (2, False), (1, False)]


async def test_a_template_that_cannot_render_is_refused_naming_the_problem(api):
    cases = [
        ({"body_template": "Hello {{ recipient.nmae }}"}, "nmae"),
        ({"body_template": "{% if issue %}unclosed"}, "line 1"),
        ({"body_template": "{{ ''.__class__.__mro__ }}"}, ""),
        ({"channel": "EMAIL", "subject_template": None}, "needs a subject"),
    ]
    for change, fragment in cases:
        response = await api.post(URL, headers=ADMIN, json=SMS_ASSIGNED | change)
        assert_error(response, 422, "template error", fragment)
    assert await active(api, channel="SMS") == []
    base = (await api.post(URL, headers=ADMIN, json=SMS_ASSIGNED)).json()
    assert_error(await api.put(f"{URL}/{base['id']}", headers=ADMIN, json={"body_template": "{{ nope }}"}),
                 422, "nope")
    assert_error(await api.put(f"{URL}/{base['id']}", headers=ADMIN, json={"body_template": None}),
                 422, "body_template cannot be null")


async def test_invalid_request_fields_are_422(api):
    assert_error(await api.post(URL, headers=ADMIN, json=SMS_ASSIGNED | {"channel": "PIGEON"}), 422, "channel")
    assert_error(await api.post(URL, headers=ADMIN, json=SMS_ASSIGNED | {"locale": "../etc"}), 422, "locale")
    assert_error(await api.post(URL, headers=ADMIN, json={"channel": "SMS"}), 422, "body_template", "Field required")
    assert_error(await api.get(URL, headers=ADMIN, params={"notification_type": "NOPE"}), 422, "notification_type")


async def test_preview_a_stored_version_with_sample_data(api):
    [stored] = await active(api, notification_type="ISSUE_ASSIGNED", channel="EMAIL", locale="en")
    response = await api.post(f"{URL}/preview", headers=ADMIN, json={"template_id": stored["id"]})
    assert response.status_code == 200, response.text
    preview = response.json()
    assert "ISS-42" in preview["subject"] and preview["text"] and "<html" in preview["html"].lower()
    assert preview["context"]["issue"]["id"] == "ISS-42"


async def test_preview_a_draft_with_my_own_context(api):
    draft = SMS_ASSIGNED | {"body_template": "{{ issue.id }} for {{ recipient.name }}"}
    context = {"issue": {"id": "ISS-7"}, "recipient": {"name": "Soa"}}
    response = await api.post(f"{URL}/preview", headers=ADMIN, json={"template": draft, "context": context})
    assert response.status_code == 200, response.text
    assert response.json() == {"subject": None, "text": "ISS-7 for Soa", "html": None, "context": context}
    missing = await api.post(f"{URL}/preview", headers=ADMIN, json={"template": draft, "context": {"issue": {}}})
    assert_error(missing, 422, "template error")
    assert_error(await api.post(f"{URL}/preview", headers=ADMIN, json={}), 422, "exactly one of template_id")


async def test_unknown_template_ids_are_404(api):
    unknown = uuid.uuid4()
    for response in (
        await api.put(f"{URL}/{unknown}", headers=ADMIN, json={}),
        await api.get(f"{URL}/{unknown}/versions", headers=ADMIN),
        await api.post(f"{URL}/preview", headers=ADMIN, json={"template_id": str(unknown)}),
    ):
        assert_error(response, 404, f"no template version {unknown}")
    assert_error(await api.get(f"{URL}/not-a-uuid/versions", headers=ADMIN), 422, "template_id")


async def test_templates_are_for_admins(api):
    assert_error(await api.get(URL), 401)
    assert_error(await api.post(URL, json=SMS_ASSIGNED), 401)
    assert_error(await api.post(URL, headers=bearer("u-1"), json=SMS_ASSIGNED), 403, "admin")
    assert_error(await api.post(f"{URL}/preview", headers=bearer("u-1"), json={}), 403, "admin")
