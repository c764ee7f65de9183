"""Live inbox over Server-Sent Events, against a real uvicorn server and real NOTIFY.

A row plus ``pg_notify('notiflow_inbox', …)`` committed from another
connection, exactly as the deliver activity does, must reach the person's open
stream within a second.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from notiflow.db import INBOX_CHANNEL, asyncpg_dsn
from notiflow.tokens import make_api_token
from programs.api import inbox
from tests.api.helpers import JWT_SECRET, SERVICE, add_users, bearer, person
from tests.factories import ADMIN_EN, ASSIGNEE, DIRECTORY, event_dict, issue_dict, ref

STREAM = "/api/v1/notifications/inbox/stream"


async def deliver_in_app(database_url: str, user_id: str, title: str = "ISS-42 is yours") -> str:
    """Insert an in-app notification and NOTIFY in one transaction, from a connection of our own."""
    notification_id = str(uuid.uuid4())
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO in_app_notifications (id, user_id, notification_type, issue_id, title, body) "
                "VALUES ($1, $2, 'ISSUE_ASSIGNED', 'ISS-42', $3, 'body')",
                uuid.UUID(notification_id),
                user_id,
                title,
            )
            await connection.execute(
                "SELECT pg_notify($1, $2)", INBOX_CHANNEL, json.dumps({"user_id": user_id, "id": notification_id})
            )
    finally:
        await connection.close()
    return notification_id


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) per event; comments (keepalive pings) as ("comment", text)."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "" and data:
            yield event, "\n".join(data)
            event, data = "message", []


async def wait_until(condition, failure: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.02)


@pytest.fixture
async def sse_client(live_api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_api.url, timeout=10) as client:
        yield client


async def test_a_delivered_notification_reaches_the_stream_within_a_second(sse_client, db, database_url):
    await add_users(db, person("u-1"), person("u-2"))
    token = make_api_token(JWT_SECRET, "u-1", [], 300)
    async with sse_client.stream("GET", STREAM, params={"access_token": token}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        assert await asyncio.wait_for(anext(events), 5) == ("unread_count", '{"unread_count":0}')

        await deliver_in_app(database_url, "u-2", "not yours")
        mine = await deliver_in_app(database_url, "u-1")
        delivered = time.monotonic()
        name, data = await asyncio.wait_for(anext(events), 1.0)
        assert time.monotonic() - delivered < 1.0
        assert name == "notification"
        item = json.loads(data)
        assert (item["id"], item["title"], item["issue_id"]) == (mine, "ISS-42 is yours", "ISS-42")
        assert item["read_at"] is None


async def test_the_stream_accepts_the_authorization_header_and_says_its_unread_count(sse_client, db, database_url):
    await add_users(db, person("u-1"))
    await deliver_in_app(database_url, "u-1")
    async with sse_client.stream("GET", STREAM, headers=bearer("u-1")) as response:
        assert response.status_code == 200
        assert await asyncio.wait_for(anext(sse_events(response)), 5) == ("unread_count", '{"unread_count":1}')


async def test_the_stream_sends_keepalive_pings(sse_client, db, monkeypatch):
    monkeypatch.setattr(inbox, "KEEPALIVE_SECONDS", 0.2)
    async with sse_client.stream("GET", STREAM, headers=bearer("u-1")) as response:
        events = sse_events(response)
        assert (await asyncio.wait_for(anext(events), 5))[0] == "unread_count"
        name, text = await asyncio.wait_for(anext(events), 2)
        assert name == "comment" and text.startswith("ping")


async def test_the_stream_refuses_bad_tokens(sse_client):
    response = await sse_client.get(STREAM, params={"access_token": "forged"})
    assert response.status_code == 401 and "not valid" in response.json()["detail"]
    response = await sse_client.get(STREAM)
    assert response.status_code == 401 and "access_token" in response.json()["detail"]


async def test_the_listener_survives_a_lost_connection_and_bad_payloads(api, api_app, db, database_url):
    await add_users(db, person("u-1"))
    listener = api_app.state.api.inbox
    async with listener.subscribe("u-1") as arrivals:
        admin = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await admin.execute("SELECT pg_notify($1, 'not json')", INBOX_CHANNEL)
            await admin.execute('SELECT pg_notify($1, \'{"user_id": "u-1"}\')', INBOX_CHANNEL)
            first = await deliver_in_app(database_url, "u-1")
            assert str(await asyncio.wait_for(arrivals.get(), 1.0)) == first

            terminated = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
            assert terminated == 1
        finally:
            await admin.close()
        await wait_until(lambda: not listener.is_listening, "the lost LISTEN connection went unnoticed")
        assert "LISTEN connection is down" in (await api.get("/readyz")).json()["checks"]["inbox_listener"]
        await wait_until(lambda: listener.is_listening, "the LISTEN connection did not come back")
        assert (await api.get("/readyz")).json()["checks"]["inbox_listener"] == "ok"

        second = await deliver_in_app(database_url, "u-1")
        assert str(await asyncio.wait_for(arrivals.get(), 1.0)) == second


@pytest.mark.usefixtures("worker")
async def test_an_event_posted_to_the_api_reaches_the_assignees_open_stream(sse_client, db):
    """End to end: POST /events → Temporal → worker → in-app row + NOTIFY → this API's SSE stream."""
    await add_users(db, *DIRECTORY)
    event = event_dict("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(ASSIGNEE)), actor=ADMIN_EN)
    token = make_api_token(JWT_SECRET, ASSIGNEE.id, [], 300)
    async with sse_client.stream("GET", STREAM, params={"access_token": token}) as response:
        events = sse_events(response)
        assert (await asyncio.wait_for(anext(events), 5))[0] == "unread_count"
        published = await sse_client.post("/api/v1/events", headers=SERVICE, json=event)
        assert published.status_code == 202, published.text
        name, data = await asyncio.wait_for(anext(events), 20)
    assert name == "notification"
    item = json.loads(data)
    assert (item["notification_type"], item["issue_id"]) == ("ISSUE_ASSIGNED", event["issue"]["id"])
