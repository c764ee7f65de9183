"""Payload encryption: the codec, its setting, and the codec server the web UI calls.

End to end on the real dev server: a keyed worker delivers the mail while the
history Temporal stores holds no personal data, and /codec/decode reads it back
for an admin token only (or, without a token, on the private codec listener).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import timedelta

import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from notiflow.client import NotificationClient
from notiflow.codec import ENCODING, KEY_ID, CodecError, EncryptionCodec, codec_for, key_id
from notiflow.contracts import parse_event
from notiflow.settings import Settings, SettingsError, load_settings
from notiflow.temporal import DATA_CONVERTER, data_converter
from programs.api.app import create_app
from programs.api.codec import create_codec_app
from tests.api.helpers import ADMIN, JWT_SECRET, SERVICE, UI_URL, asgi_client, bearer
from tests.factories import ADMIN_EN, ASSIGNEE, DIRECTORY, REPORTER, event_dict, issue_dict, ref
from workers.main import WORKFLOW_RUNNER, build_worker
from workers.registry import ALL_WORKFLOWS

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


@pytest.mark.parametrize(
    "alter", [lambda data: data[:-1] + bytes([data[-1] ^ 1]), lambda data: data[:5]], ids=["flipped bit", "truncated"]
)
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


async def test_a_keyring_seals_with_its_first_key_and_opens_with_every_key():
    old, new = ("k1", new_key()), ("k2", new_key())
    [under_old] = await EncryptionCodec([(old[0], base64.b64decode(old[1]))]).encode([PLAIN])
    rotated = codec_for(Settings(payload_keys=ring(new, old)))
    assert rotated is not None and rotated.key_ids == ["k2", "k1"] and rotated.key_id == "k2"
    [under_new] = await rotated.encode([PLAIN])
    assert under_old.metadata[KEY_ID] == b"k1" and under_new.metadata[KEY_ID] == b"k2"
    assert await rotated.decode([under_old, under_new]) == [PLAIN, PLAIN]


@pytest.mark.parametrize("metadata", [{KEY_ID: b"retired-2024"}, {}], ids=["unknown key id", "no key id"])
async def test_a_payload_under_a_key_id_not_in_the_ring_fails_naming_it(metadata):
    [sealed] = await codec_for(Settings(payload_keys=ring(("retired-2024", new_key())))).encode([PLAIN])
    del sealed.metadata[KEY_ID]
    sealed.metadata.update(metadata)
    reader = codec_for(Settings(payload_keys=ring(("k2", new_key()), ("k1", new_key()))))
    with pytest.raises(CodecError) as caught:
        await reader.decode([sealed])
    named = metadata.get(KEY_ID, b"(no key id)").decode()
    assert f"key {named}" in str(caught.value) and "not in the keyring (keys k2, k1)" in str(caught.value)
    assert "NOTIFLOW_PAYLOAD_KEYS" in str(caught.value)


async def test_the_wrong_key_under_a_known_key_id_fails_naming_it():
    [sealed] = await codec_for(Settings(payload_keys=ring(("k1", new_key())))).encode([PLAIN])
    with pytest.raises(CodecError, match="payload under key k1 failed authentication.*key given as k1"):
        await codec_for(Settings(payload_keys=ring(("k1", new_key())))).decode([sealed])


def test_the_single_codec_key_is_a_one_key_ring_and_joins_a_ring_to_decrypt():
    assert Settings(payload_keys="").payload_keys is None  # an empty variable means unset
    single = new_key()
    assert Settings(codec_key=single).payload_keyring == [(key_id(base64.b64decode(single)), base64.b64decode(single))]
    both = Settings(codec_key=single, payload_keys=ring(("k2", (k2 := new_key()))))
    assert both.payload_keyring == [
        ("k2", base64.b64decode(k2)),
        (key_id(base64.b64decode(single)), base64.b64decode(single)),
    ]
    assert Settings().payload_keyring == [] and codec_for(Settings()) is None


async def test_payloads_sealed_under_the_single_key_open_after_moving_to_a_ring():
    single = new_key()
    [sealed] = await codec_for(Settings(codec_key=single)).encode([PLAIN])
    moved = codec_for(Settings(codec_key=single, payload_keys=ring(("k2", new_key()))))
    assert moved is not None and moved.key_id == "k2"
    assert await moved.decode([sealed]) == [PLAIN]


@pytest.mark.parametrize(
    "value, says",
    [
        ("{key}", "entry 1 must be kid:base64key"),
        ("k1:{key},k1:{key}", "key id 'k1' appears twice"),
        ("k1:{key},k 2:{key}", "entry 2 must be kid:base64key"),
        ("k1:" + base64.b64encode(b"short").decode(), "key 'k1' must be base64 of 32 random bytes"),
        ("k1:not base64!", "key 'k1' must be base64 of 32 random bytes"),
        (" , ", "holds no key"),
    ],
)
def test_a_bad_keyring_stops_start_up_naming_the_entry_never_a_key(monkeypatch, value, says):
    key = new_key()
    monkeypatch.setenv("NOTIFLOW_PAYLOAD_KEYS", value.format(key=key))
    monkeypatch.delenv("NOTIFLOW_CODEC_KEY", raising=False)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "NOTIFLOW_PAYLOAD_KEYS" in message and says in message and key not in message
    assert "not base64!" not in message and "value hidden" in message


async def test_failure_messages_are_encrypted_too():
    converter = data_converter(Settings(codec_key=new_key()))
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"recipient refused: {REPORTER.email}"), failure)
    assert REPORTER.email.encode() not in failure.SerializeToString()
    assert REPORTER.email in str(await converter.decode_failure(failure))


def ring(*keys: tuple[str, str]) -> str:
    """NOTIFLOW_PAYLOAD_KEYS for (key id, base64 key) pairs, the encrypting one first."""
    return ",".join(f"{kid}:{key}" for kid, key in keys)


def _plaintext_in(stored: bytes, *secrets: str) -> list[str]:
    return [secret for secret in secrets if secret.encode() in stored]


async def _raw_history(temporal_env, workflow_id: str):
    """The history as the server stores it: fetched by the session's client, which has no codec."""
    return await temporal_env.client.get_workflow_handle(workflow_id).fetch_history()


async def test_history_holds_no_personal_data_under_a_rotating_keyring(temporal_env, settings, db, smtp):
    """A real event through a keyed worker, the ring rotated, a second event: both histories hold no plaintext
    name, address or body; the one written under the old key still decodes (replay, codec server); a ring
    without the old key fails naming it."""
    old, new = ("2025-01", new_key()), ("2025-07", new_key())
    target = temporal_env.client.service_client.config.target_host
    refused = ADMIN_EN.email
    smtp.sink.rejected[refused] = f"mailbox unavailable: {refused} ({ADMIN_EN.name})"
    body = f"Body {uuid.uuid4().hex}: the clerk's card for {REPORTER.name} jams"
    comment = f"Comment {uuid.uuid4().hex} from {ASSIGNEE.name}"
    secrets = [body, comment, *(u.email for u in DIRECTORY), *(u.name for u in DIRECTORY)]

    async def publish(keys: str, raw: dict) -> tuple[str, str]:
        keyed = settings.model_copy(update={"payload_keys": SecretStr(keys), "codec_key": None})
        assert keyed.payload_keyring[0][0] == keys.split(":")[0]
        client = await Client.connect(target, data_converter=data_converter(keyed))
        async with build_worker(client, keyed):
            notifier = NotificationClient(client, keyed)
            await notifier.sync_users(DIRECTORY)
            workflow_id = await notifier.publish(parse_event(raw))
            await client.get_workflow_handle(workflow_id).result()
        return workflow_id, f"issue/{raw['issue']['id']}/sla"

    created = event_dict("ISSUE_CREATED", issue=issue_dict(description=body))
    first = await publish(ring(old), created)
    commented = event_dict(
        "ISSUE_COMMENT_ADDED",
        minutes=1,
        issue=created["issue"] | {"assignee": ref(ASSIGNEE)},
        actor=ASSIGNEE,
        comment={"id": "c-1", "body": comment, "author": ref(ASSIGNEE)},
    )
    second = await publish(ring(new, old), commented)  # rotated: the new key first, the old one kept to decrypt
    assert smtp.sink.messages and not smtp.sink.to(refused)  # its refusal (quoting it) is in the run's result

    histories = {wid: await _raw_history(temporal_env, wid) for wid in (*first, *second)}
    for workflow_id, history in histories.items():
        stored = b"".join(e.SerializeToString() for e in history.events)
        assert not _plaintext_in(stored, *secrets), f"{workflow_id} holds plaintext"
    sealed_by = {
        wid: {
            p.metadata[KEY_ID].decode()
            for e in h.events
            for p in e.workflow_execution_started_event_attributes.input.payloads
        }
        for wid, h in histories.items()
    }
    assert sealed_by[first[0]] == {old[0]} and sealed_by[second[0]] == {new[0]}
    results = [
        e.workflow_execution_completed_event_attributes.result.payloads
        for e in histories[second[0]].events
        if e.HasField("workflow_execution_completed_event_attributes")
    ]
    assert results and all(p.metadata["encoding"] == ENCODING for p in results[0])  # results too

    rotated = settings.model_copy(update={"payload_keys": SecretStr(ring(new, old)), "codec_key": None})
    replayer = Replayer(
        workflows=ALL_WORKFLOWS, data_converter=data_converter(rotated), workflow_runner=WORKFLOW_RUNNER
    )
    for workflow_id, history in histories.items():  # every payload of both histories decodes under the ring
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, f"{workflow_id}: {replayed.replay_failure}"

    [started_input] = histories[first[0]].events[0].workflow_execution_started_event_attributes.input.payloads
    async with asgi_client(create_app(rotated.model_copy(update={"jwt_secret": JWT_SECRET}))) as api:
        response = await api.post(
            "/codec/decode", json=as_json(started_input), headers={"X-Namespace": "default", **ADMIN}
        )
    assert response.status_code == 200, response.text
    [decoded] = json_format.ParseDict(response.json(), Payloads()).payloads
    assert decoded.metadata["encoding"] == b"json/plain"
    assert json.loads(decoded.data)["issue"]["description"] == body

    retired = settings.model_copy(update={"payload_keys": SecretStr(ring(new)), "codec_key": None})
    with pytest.raises(CodecError) as caught:  # the old key retired too early: loud, naming the key it needs
        await codec_for(retired).decode([started_input])
    assert f"key {old[0]}" in str(caught.value) and old[1] not in str(caught.value)


@activity.defn(name="refuse_recipient")
async def refuse_recipient(address: str) -> None:
    raise ApplicationError(
        f"550 5.1.1 <{address}>: mailbox unavailable",
        {"address": address},
        type="PermanentDeliveryError",
        non_retryable=True,
    )


@workflow.defn(name="RefusedRecipientWorkflow", sandboxed=False)
class RefusedRecipientWorkflow:
    """Fails the way a refused send does: an activity failure quoting the address, as the run's failure."""

    @workflow.run
    async def run(self, address: str) -> None:
        await workflow.execute_activity(refuse_recipient, address, start_to_close_timeout=timedelta(seconds=10))


async def test_failures_in_a_stored_history_are_encrypted(temporal_env, task_queue):
    keyed = Settings(payload_keys=ring(("k1", new_key())))
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host, data_converter=data_converter(keyed)
    )
    workflow_id = f"refused-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=task_queue, workflows=[RefusedRecipientWorkflow], activities=[refuse_recipient]
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(
                RefusedRecipientWorkflow.run, REPORTER.email, id=workflow_id, task_queue=task_queue
            )
    assert REPORTER.email in str(failed.value.cause.cause)  # the keyed client reads the message back

    history = await _raw_history(temporal_env, workflow_id)
    stored = b"".join(e.SerializeToString() for e in history.events)
    assert REPORTER.email.encode() not in stored
    failures = [
        e.activity_task_failed_event_attributes.failure
        for e in history.events
        if e.HasField("activity_task_failed_event_attributes")
    ]
    failures += [
        e.workflow_execution_failed_event_attributes.failure
        for e in history.events
        if e.HasField("workflow_execution_failed_event_attributes")
    ]
    assert len(failures) == 2
    for failure in failures:
        assert failure.message == "Encoded failure" and failure.encoded_attributes.metadata[KEY_ID] == b"k1"


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
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
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
