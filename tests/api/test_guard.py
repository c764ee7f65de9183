"""Before a route reads a body: the token is checked, the client's rate is limited, the size is capped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from notiflow.tokens import make_api_token
from programs.api.app import create_app
from tests.api.helpers import ADMIN, SERVICE, add_users, asgi_client, assert_error, bearer, person
from tests.factories import event_dict

PREFERENCES = "/api/v1/notifications/preferences"
EIGHT_MB = 8 * 1024 * 1024


class Upload:
    """Calls the app over raw ASGI with a body in 64 KiB chunks, counting what the app pulls in."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def send(
        self, method: str, path: str, body: bytes, headers: dict[str, str], *, declare_length: bool = True
    ) -> tuple[int, dict, int]:
        """(status, JSON answer, body bytes the app read)."""
        chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
        pulled = 0
        answer: dict = {"status": None, "body": b""}
        all_headers = {"content-type": "application/json", **{k.lower(): v for k, v in headers.items()}}
        if declare_length:
            all_headers["content-length"] = str(len(body))
        else:
            all_headers["transfer-encoding"] = "chunked"

        async def receive():
            nonlocal pulled
            if not chunks:
                return {"type": "http.disconnect"}
            chunk = chunks.pop(0)
            pulled += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

        async def send(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
            "client": ("203.0.113.7", 50000),
            "server": ("notiflow.test", 80),
        }
        await self.app(scope, receive, send)
        return answer["status"], json.loads(answer["body"]), pulled


@pytest.fixture
async def upload(api_app: FastAPI) -> AsyncIterator[Upload]:
    async with api_app.router.lifespan_context(api_app):
        yield Upload(api_app)


def huge_preferences() -> bytes:
    entry = {"notification_type": "ISSUE_CREATED", "channel": "EMAIL"}
    return json.dumps({"preferences": [entry] * (EIGHT_MB // len(json.dumps(entry)))}).encode()


async def test_a_body_without_a_valid_token_is_refused_before_a_byte_is_read(upload):
    body = huge_preferences()
    forged = make_api_token("someone-elses-secret-of-thirty-two-bytes", "u-1", ["admin"], 300)
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Bearer not.a.jwt"}):
        status, answer, pulled = await upload.send("PUT", PREFERENCES, body, headers)
        assert (status, pulled) == (401, 0), answer
        assert "bearer token" in answer["detail"].lower()


async def test_an_oversized_body_is_413_naming_the_limit_before_it_is_parsed(upload, api_settings, db):
    await add_users(db, person("u-1"))
    limit = f"over the limit of {api_settings.max_body_bytes} bytes (NOTIFLOW_MAX_BODY_BYTES)"
    status, answer, pulled = await upload.send("PUT", PREFERENCES, huge_preferences(), bearer("u-1"))
    assert (status, pulled) == (413, 0) and limit in answer["detail"]

    status, answer, pulled = await upload.send(
        "PUT", PREFERENCES, huge_preferences(), bearer("u-1"), declare_length=False
    )
    assert status == 413 and limit in answer["detail"]
    assert pulled <= api_settings.max_body_bytes + 65536  # it stopped reading at the limit

    status, answer, _ = await upload.send("PUT", PREFERENCES, b'{"locale": "fr"}', bearer("u-1"))
    assert status == 200, answer


async def test_an_oversized_event_is_413_not_a_503_that_clients_retry(api, api_settings):
    event = event_dict()
    event["issue"]["description"] = "x" * (3 * 1024 * 1024)
    response = await api.post("/api/v1/events", headers=SERVICE, json=event)
    assert_error(response, 413, f"{api_settings.max_body_bytes} bytes", "NOTIFLOW_MAX_BODY_BYTES")


@pytest.fixture
def limited(api_settings):
    return api_settings.model_copy(update={"rate_limit_per_minute": 5, "auth_failure_limit_per_minute": 3})


async def test_a_burst_meets_429_with_retry_after_per_client(limited, db):
    await add_users(db, person("u-1"), person("u-2"))
    async with asgi_client(create_app(limited)) as api:
        answers = [await api.get(PREFERENCES, headers=bearer("u-1")) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        refused = assert_error(answers[-1], 429, "token subject u-1", "5 a minute", "NOTIFLOW_RATE_LIMIT_PER_MINUTE")
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 12, refused
        # another person has a bucket of their own; callers without a token share their address's
        assert (await api.get(PREFERENCES, headers=bearer("u-2"))).status_code == 200
        anonymous = [(await api.get("/healthz")).status_code for _ in range(6)]
        assert anonymous == [200] * 5 + [429]


async def test_refused_tokens_meet_a_stricter_limit_that_spares_valid_ones(limited, db):
    await add_users(db, person("u-1"))
    forged = {"Authorization": f"Bearer {make_api_token('guessed-secret-of-at-least-32-bytes!', 'u-1', ['admin'], 60)}"}
    async with asgi_client(create_app(limited)) as api:
        guesses = [await api.get("/api/v1/notifications/queue", headers=forged) for _ in range(4)]
        assert [g.status_code for g in guesses] == [401, 401, 401, 429]
        assert_error(guesses[-1], 429, "refused bearer tokens", "NOTIFLOW_AUTH_FAILURE_LIMIT_PER_MINUTE")
        assert int(guesses[-1].headers["retry-after"]) >= 1
        assert (await api.get(PREFERENCES, headers=bearer("u-1"))).status_code == 200
        assert (await api.get("/api/v1/notifications/queue", headers=ADMIN)).status_code == 200
