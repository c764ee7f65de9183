"""Payload encryption: the codec, its setting, and the codec server the web UI calls.

End to end on the real dev server: a keyed worker delivers the mail while the
history Temporal stores holds no personal data, and /codec/decode reads it back
for an admin token only (or, without a token, on the private codec listener).
"""

from __future__ import annotations

import base64
import json
import os

import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from notiflow.api.app import create_app
from notiflow.api.codec import create_codec_app
from notiflow.client import NotificationClient
from notiflow.codec import ENCODING, KEY_ID, CodecError, EncryptionCodec, key_id
from notiflow.settings import Settings, SettingsError, load_settings
from notiflow.temporal import DATA_CONVERTER, data_converter
from tests.api.helpers import ADMIN, JWT_SECRET, SERVICE, UI_URL, asgi_client, bearer
from tests.factories import DIRECTORY, REPORTER, event
from workers.main import build_worker

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"email": REPORTER.email}).encode())


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def codec(key: str) -> EncryptionCodec:
    return EncryptionCodec(base64.b64decode(key))


def as_json(*payloads: Payload) -> dict:
    return json_format.MessageToDict(Payloads(payloads=payloads))


async def test_round_trip_seals_each_payload_with_its_own_nonce():
    key = new_key()
    sealed = await codec(key).encode([PLAIN, PLAIN])
    assert sealed[0].metadata == {"encoding": ENCODING, KEY_ID: key_id(base64.b64decode(key)).encode()}
    assert sealed[0].data != sealed[1].data
    assert all(REPORTER.email.encode() not in p.SerializeToString() for p in sealed)
    assert await codec(key).decode(sealed) == [PLAIN, PLAIN]


async def test_a_payload_under_another_key_names_both_keys():
    sealed = await codec(new_key()).encode([PLAIN])
    reader = codec(new_key())
    with pytest.raises(CodecError) as caught:
        await reader.decode(sealed)
    assert sealed[0].metadata[KEY_ID].decode() in str(caught.value)
    assert reader.key_id in str(caught.value) and "NOTIFLOW_CODEC_KEY" in str(caught.value)


@pytest.mark.parametrize("alter", [lambda data: data[:-1] + bytes([data[-1] ^ 1]), lambda data: data[:5]],
                         ids=["flipped bit", "truncated"])
async def test_an_altered_payload_is_refused(alter):
    key = new_key()
    [sealed] = await codec(key).encode([PLAIN])
    sealed.data = alter(sealed.data)
    with pytest.raises(CodecError, match="altered"):
        await codec(key).decode([sealed])


async def test_plaintext_payloads_recorded_before_encryption_pass_decode_untouched():
    assert await codec(new_key()).decode([PLAIN]) == [PLAIN]


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(os.urandom(16)).decode()])
def test_a_bad_key_stops_start_up_without_echoing_it(monkeypatch, value):
    monkeypatch.setenv("NOTIFLOW_CODEC_KEY", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "NOTIFLOW_CODEC_KEY" in str(caught.value) and value not in str(caught.value)


def test_no_key_keeps_the_plain_converter(monkeypatch):
    monkeypatch.setenv("NOTIFLOW_CODEC_KEY", "")
    assert load_settings().codec_key is None
    assert data_converter(Settings()) is DATA_CONVERTER


async def test_failure_messages_are_encrypted_too():
    converter = data_converter(Settings(codec_key=new_key()))
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"recipient refused: {REPORTER.email}"), failure)
    assert REPORTER.email.encode() not in failure.SerializeToString()
    assert REPORTER.email in str(await converter.decode_failure(failure))


async def test_history_holds_no_personal_data_and_the_codec_server_reads_it(temporal_env, settings, db, smtp):
    keyed = settings.model_copy(update={"codec_key": SecretStr(new_key())})
    client = await Client.connect(temporal_env.client.service_client.config.target_host,
                                  data_converter=data_converter(keyed))
    async with build_worker(client, keyed):
        notifier = NotificationClient(client, keyed)
        await notifier.sync_users(DIRECTORY)
        workflow_id = await notifier.publish(event("ISSUE_CREATED"))
        await client.get_workflow_handle(workflow_id).result()
    assert len(await smtp.wait_for(2)) == 2

    history = await temporal_env.client.get_workflow_handle(workflow_id).fetch_history()  # no codec
    stored = b"".join(e.SerializeToString() for e in history.events)
    for user in DIRECTORY:
        assert user.email.encode() not in stored and user.name.encode() not in stored
    [started_input] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert started_input.metadata["encoding"] == ENCODING

    async with asgi_client(create_app(keyed.model_copy(update={"jwt_secret": JWT_SECRET}))) as api:
        response = await api.post("/codec/decode", json=as_json(started_input),
                                  headers={"X-Namespace": "default", **ADMIN})
    assert response.status_code == 200, response.text
    [decoded] = json_format.ParseDict(response.json(), Payloads()).payloads
    assert decoded.metadata["encoding"] == b"json/plain"
    assert json.loads(decoded.data)["issue"]["reporter"]["email"] == REPORTER.email


@pytest.fixture
def ui_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, ui_url=UI_URL, codec_key=new_key(), jwt_secret=JWT_SECRET)


async def test_codec_server_encodes_and_refuses_what_it_cannot_open(ui_settings, db):
    async with asgi_client(create_app(ui_settings)) as api:
        encoded = await api.post("/codec/encode", json=as_json(PLAIN), headers=ADMIN)
        assert encoded.status_code == 200, encoded.text
        assert REPORTER.email not in encoded.text
        decoded = await api.post("/codec/decode", json=encoded.json(), headers=ADMIN)
        assert decoded.json() == as_json(PLAIN)

    other = ui_settings.model_copy(update={"codec_key": SecretStr(new_key())})
    async with asgi_client(create_app(other)) as api:
        refused = await api.post("/codec/decode", json=encoded.json(), headers=ADMIN)
        assert refused.status_code == 422 and "NOTIFLOW_CODEC_KEY" in refused.json()["detail"]
        garbage = await api.post("/codec/decode", content=b'{"payloads": "no"}', headers=ADMIN)
        assert garbage.status_code == 422 and "protobuf JSON" in garbage.json()["detail"]


async def test_the_apis_codec_routes_refuse_anyone_but_an_admin(ui_settings, db):
    sealed = as_json(*await codec(ui_settings.codec_key.get_secret_value()).encode([PLAIN]))
    async with asgi_client(create_app(ui_settings)) as api:
        for path, body in (("/codec/decode", sealed), ("/codec/encode", as_json(PLAIN))):
            anonymous = await api.post(path, json=body, headers={"X-Namespace": "default"})
            assert anonymous.status_code == 401 and "Authorization: Bearer" in anonymous.json()["detail"]
            assert REPORTER.email not in anonymous.text
            for someone in (bearer("u-1"), SERVICE):
                refused = await api.post(path, json=body, headers=someone)
                assert refused.status_code == 403 and "'admin' role" in refused.json()["detail"]


async def test_the_private_codec_listener_serves_the_ui_without_a_token(ui_settings):
    """What `notiflow codec` and `notiflow dev` serve on 127.0.0.1 for a web UI that has no token to pass."""
    app = create_codec_app(ui_settings)
    async with asgi_client(app) as listener:
        encoded = await listener.post("/codec/encode", json=as_json(PLAIN), headers={"Origin": UI_URL})
        assert encoded.status_code == 200 and REPORTER.email not in encoded.text
        assert encoded.headers["access-control-allow-origin"] == UI_URL
        decoded = await listener.post("/codec/decode", json=encoded.json())
        assert decoded.json() == as_json(PLAIN)
        assert (await listener.get("/api/v1/notifications/queue", headers=ADMIN)).status_code == 404  # codec only


async def test_without_a_key_the_codec_server_passes_payloads_through(ui_settings, db):
    async with asgi_client(create_app(ui_settings.model_copy(update={"codec_key": None}))) as api:
        for path in ("/codec/encode", "/codec/decode"):
            response = await api.post(path, json=as_json(PLAIN), headers=ADMIN)
            assert response.json() == as_json(PLAIN)


async def test_cors_lets_the_web_ui_call_the_codec_paths_only(ui_settings, db):
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-namespace,authorization"}
    async with asgi_client(create_app(ui_settings)) as api:
        allowed = await api.options("/codec/decode", headers={"Origin": UI_URL, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == UI_URL
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()

        stranger = await api.options("/codec/decode", headers={"Origin": "http://evil.test", **preflight})
        assert stranger.status_code == 400 and "access-control-allow-origin" not in stranger.headers

        post = await api.post("/codec/decode", json=as_json(PLAIN), headers={"Origin": UI_URL, **ADMIN})
        assert post.status_code == 200 and post.headers["access-control-allow-origin"] == UI_URL
        refused = await api.post("/codec/decode", json=as_json(PLAIN), headers={"Origin": UI_URL})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == UI_URL

        elsewhere = await api.options("/api/v1/events", headers={"Origin": UI_URL, **preflight})
        assert "access-control-allow-origin" not in elsewhere.headers
