"""Webhook / Slack / Teams subscriptions: admin CRUD, secrets shown once, audit, URLs refused at save (422)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from notiflow import outbound
from notiflow.models import AuditLogRow
from programs.api.app import create_app
from tests.api.helpers import ADMIN, asgi_client, assert_error, bearer
from tests.delivery.hook_receiver import Receiver

ROUTE = "/api/v1/notifications/webhooks"


def body(url: str, kind: str = "WEBHOOK", types=("ISSUE_CREATED",), **extra) -> dict:
    return {"kind": kind, "url": url, "notification_types": list(types), **extra}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    answers = {"hooks.example": ["93.184.216.34"], "intranet.example": ["10.1.2.3"], "hooks.slack.com": ["3.3.3.3"]}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"no such name {host}")
        return answers[host]

    monkeypatch.setattr(outbound, "resolve", resolve)


async def test_crud_with_a_secret_shown_once_and_every_change_audited(api, db):
    created = await api.post(
        ROUTE,
        json=body("https://hooks.example/notiflow", types=["ISSUE_CREATED", "HIGH_PRIORITY_ISSUE"]),
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 40
    assert {k: hook[k] for k in ("kind", "url", "notification_types", "active")} == {
        "kind": "WEBHOOK",
        "url": "https://hooks.example/notiflow",
        "notification_types": ["ISSUE_CREATED", "HIGH_PRIORITY_ISSUE"],
        "active": True,
    }

    slack = (
        await api.post(ROUTE, json=body("https://hooks.slack.com/services/T0/B0/xyz", "SLACK"), headers=ADMIN)
    ).json()
    assert slack["secret"] is None

    listed = (await api.get(ROUTE, headers=ADMIN)).json()
    assert [i["id"] for i in listed] == [hook["id"], slack["id"]]
    assert all("secret" not in item for item in listed)

    edited = await api.put(
        f"{ROUTE}/{hook['id']}",
        headers=ADMIN,
        json=body("https://hooks.example/v2", types=["ISSUE_RESOLVED"], active=False),
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["url"], edited.json()["notification_types"], edited.json()["active"]) == (
        "https://hooks.example/v2",
        ["ISSUE_RESOLVED"],
        False,
    )

    rotated = await api.post(f"{ROUTE}/{hook['id']}/rotate-secret", headers=ADMIN)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (hook["secret"], None)
    assert_error(await api.post(f"{ROUTE}/{slack['id']}/rotate-secret", headers=ADMIN), 422, "only WEBHOOK")
    assert_error(
        await api.put(f"{ROUTE}/{slack['id']}", headers=ADMIN, json=body("https://hooks.example/x", "TEAMS")),
        422,
        "kind cannot change",
    )

    assert (await api.delete(f"{ROUTE}/{slack['id']}", headers=ADMIN)).status_code == 204
    assert_error(await api.delete(f"{ROUTE}/{slack['id']}", headers=ADMIN), 404, "no webhook subscription")
    assert_error(await api.put(f"{ROUTE}/{uuid.uuid4()}", headers=ADMIN, json=body("https://hooks.example/")), 404)

    async with db() as session:
        audit = (
            await session.scalars(
                select(AuditLogRow).where(AuditLogRow.action.like("webhook.%")).order_by(AuditLogRow.at)
            )
        ).all()
    assert [(a.action, a.actor) for a in audit] == [
        ("webhook.create", "u-admin"),
        ("webhook.create", "u-admin"),
        ("webhook.update", "u-admin"),
        ("webhook.rotate_secret", "u-admin"),
        ("webhook.delete", "u-admin"),
    ]
    update = audit[2].details
    assert update["active"] == {"before": True, "after": False} and "notification_types" in update
    text = str([a.details for a in audit])
    assert "whsec_" not in text and "/services/T0/B0/xyz" not in text  # no secret, no credential-bearing path


async def test_only_admins(api):
    assert (await api.get(ROUTE)).status_code == 401
    assert (await api.get(ROUTE, headers=bearer("u-1"))).status_code == 403
    assert (
        await api.post(ROUTE, json=body("https://hooks.example/"), headers=bearer("u-1", "service"))
    ).status_code == 403


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "IPv4-mapped"),
        ("http://2130706433:{port}/hook", "not a canonical IPv4"),
        ("http://0177.0.0.1:{port}/hook", "not a canonical IPv4"),
        ("https://intranet.example/hook", "intranet.example resolves to 10.1.2.3"),
        ("http://hooks.example/hook", "plain http://"),
        ("https://nowhere.example/hook", "cannot resolve"),
        ("http://[::1/", "malformed"),
        ("http://bad host/", "spaces"),
        ("https://%zz/", "not a valid name"),
    ],
)
async def test_a_refused_url_is_422_naming_the_reason_and_never_connected(api, url, reason):
    async with Receiver() as listener:
        url = url.format(port=listener.port)
        assert_error(await api.post(ROUTE, json=body(url), headers=ADMIN), 422, "url refused", reason)
        assert listener.connections == 0
    assert (await api.get(ROUTE, headers=ADMIN)).json() == []


async def test_loopback_needs_the_allow_setting(api_settings, db):
    async with Receiver() as listener:
        async with asgi_client(create_app(api_settings.model_copy(update={"outbound_allow": ""}))) as strict:
            assert_error(await strict.post(ROUTE, json=body(listener.url()), headers=ADMIN), 422, "loopback")
        async with asgi_client(create_app(api_settings)) as allowing:
            assert (await allowing.post(ROUTE, json=body(listener.url()), headers=ADMIN)).status_code == 201
        assert listener.connections == 0  # saving checks, it does not call


async def test_an_invalid_body_is_422_naming_the_field(api):
    assert_error(await api.post(ROUTE, json=body("https://hooks.example/", kind="EMAIL"), headers=ADMIN), 422, "kind")
    assert_error(
        await api.post(ROUTE, json=body("https://hooks.example/", types=[]), headers=ADMIN), 422, "notification_types"
    )
    assert_error(
        await api.post(ROUTE, json=body("https://hooks.example/", types=["NOPE"]), headers=ADMIN),
        422,
        "notification_types",
    )
    assert_error(
        await api.post(ROUTE, json=body("https://hooks.example/") | {"secret": "mine"}, headers=ADMIN), 422, "secret"
    )
