"""Helpers for the API tests: tokens, directory entries, error assertions, servers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from notiflow.contracts import User
from notiflow.directory import upsert_users
from notiflow.tokens import make_api_token
from programs.dev.ports import free_port

JWT_SECRET = "api-test-secret-of-at-least-thirty-two-bytes"
UI_URL = "http://temporal-ui.test"


def bearer(user_id: str = "u-1", *roles: str, ttl: int = 3600) -> dict[str, str]:
    """A signed token; the module-level ones below live through a whole (slow, loaded) suite run."""
    return {"Authorization": f"Bearer {make_api_token(JWT_SECRET, user_id, list(roles), ttl)}"}


ADMIN = bearer("u-admin", "admin")
SERVICE = bearer("issue-tracker", "service")


def person(user_id: str = "u-1", **fields) -> User:
    fields.setdefault("name", f"Person {user_id}")
    fields.setdefault("email", f"{user_id}@example.mg")
    return User(id=user_id, **fields)


async def add_users(sessions, *users: User) -> None:
    async with sessions.begin() as session:
        await upsert_users(session, users)


def assert_error(response: httpx.Response, status: int, *fragments: str) -> dict:
    """The API's error shape: JSON whose detail is a sentence mentioning each fragment."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str), body
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    return body


def temporal_address(client: Client) -> str:
    return client.service_client.config.target_host


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, called in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notiflow.test") as client:
            yield client


class LiveServer:
    """A real uvicorn server on a free port, in a thread with its own event loop.

    Its own thread lets synchronous clients (schemathesis) call it from a test
    without blocking the loop that serves them.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"uvicorn did not start on port {self.port} (see the log above)")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 10)
