"""The live inbox resumes after a dropped connection: every event has an id, and Last-Event-ID replays
what was missed after it — each once, oldest first — then a fresh unread count."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from notiflow.tokens import make_api_token
from tests.api.helpers import JWT_SECRET, add_users, person
from tests.api.test_inbox_stream import STREAM, deliver_in_app


async def frames(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """Each SSE event as its fields (event, id, data, retry); comments skipped."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line == "":
            if "data" in fields:
                yield fields
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")


@pytest.fixture
async def sse_client(live_api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_api.url, timeout=10) as client:
        yield client


def token(user_id: str = "u-1") -> str:
    return make_api_token(JWT_SECRET, user_id, [], 300)


async def first_frames(client: httpx.AsyncClient, count: int, **headers: str) -> list[dict[str, str]]:
    async with client.stream("GET", STREAM, params={"access_token": token()}, headers=headers) as response:
        assert response.status_code == 200
        got, stream = [], frames(response)
        for _ in range(count):
            got.append(await asyncio.wait_for(anext(stream), 5))
        return got


async def test_every_event_has_an_id_and_a_reconnect_gets_what_it_missed_once(sse_client, db, database_url):
    await add_users(db, person("u-1"), person("u-2"))
    seen = await deliver_in_app(database_url, "u-1", "seen before the drop")
    (hello,) = await first_frames(sse_client, 1)
    assert hello["event"] == "unread_count" and hello["id"] and hello["retry"] == "1000"
    position = hello["id"]  # "up to here": the newest item at connect time

    missed = [await deliver_in_app(database_url, "u-1", f"missed {n}") for n in range(3)]
    await deliver_in_app(database_url, "u-2", "someone else's")
    replay = await first_frames(sse_client, 4, **{"Last-Event-ID": position})
    assert [f["event"] for f in replay] == ["notification"] * 3 + ["unread_count"]
    assert [json.loads(f["data"])["id"] for f in replay[:3]] == missed
    assert seen not in [json.loads(f["data"])["id"] for f in replay[:3]]
    assert json.loads(replay[3]["data"]) == {"unread_count": 4}
    assert "id" not in replay[3]  # the count does not move the resume point

    # Resuming from the last replayed one: nothing again, only the count.
    (again,) = await first_frames(sse_client, 1, **{"Last-Event-ID": replay[2]["id"]})
    assert again["event"] == "unread_count"


async def test_an_empty_inbox_resumes_from_the_beginning_and_a_foreign_id_starts_afresh(sse_client, db, database_url):
    await add_users(db, person("u-1"))
    (hello,) = await first_frames(sse_client, 1)
    arrived = await deliver_in_app(database_url, "u-1", "while away")
    replay = await first_frames(sse_client, 2, **{"Last-Event-ID": hello["id"]})
    assert json.loads(replay[0]["data"])["id"] == arrived
    (fresh,) = await first_frames(sse_client, 1, **{"Last-Event-ID": "not-one-of-ours"})
    assert fresh["event"] == "unread_count" and json.loads(fresh["data"]) == {"unread_count": 1}


async def test_the_query_parameter_resumes_like_the_header(sse_client, db, database_url):
    await add_users(db, person("u-1"))
    (hello,) = await first_frames(sse_client, 1)
    arrived = await deliver_in_app(database_url, "u-1")
    async with sse_client.stream("GET", STREAM, params={"access_token": token(), "last_event_id": hello["id"]}) as r:
        frame = await asyncio.wait_for(anext(frames(r)), 5)
    assert json.loads(frame["data"])["id"] == arrived
